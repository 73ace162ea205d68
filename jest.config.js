/**
 * Tests run against real PKCS#11 tokens created per test file (see test/helpers): every suite on
 * SoftHSMv2, and the HSM and API suites once more on NSS's softoken, an independent implementation
 * configured as any vendor's module is, and once more on a FIPS-style HSM (the shim's FIPS build
 * over SoftHSM: the HSM makes the GCM IVs) configured by capability alone
 * (test/helpers/test-module.ts). Left out there: the tests of the embedded SoftHSM itself (process,
 * cluster, crash), those through the fault shim (a wrapper of SoftHSM), and shared-token
 * (SoftHSM's file store's behaviour across processes).
 */
const base = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};

/** The API and HSM suites that run on every module, not only the embedded SoftHSM. */
const ON_EVERY_MODULE = [
  'api/keys',
  'api/datakeys',
  'api/sdk',
  'api/validation',
  'api/access',
  'api/audit',
  'api/audit-anchor',
  'api/quota',
  'api/grants',
  'api/versions',
  'api/hostile-input',
  'api/protocol',
  'api/persistence',
  'api/cli',
  'api/authentication-faults',
  'api/data',
  'api/gen-random',
  'api/re-encrypt',
  'api/rotation',
  'hsm/key-material',
  'hsm/recovery',
];

module.exports = {
  // PKCS#11 modules are process-wide: each test file gets its own worker process.
  maxWorkers: 2,
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  testTimeout: 30000,
  projects: [
    { ...base, displayName: 'softhsm', testMatch: ['**/*.test.ts'] },
    {
      ...base,
      displayName: 'nss',
      testMatch: ON_EVERY_MODULE.map((file) => `<rootDir>/test/${file}.test.ts`),
      setupFiles: ['<rootDir>/test/helpers/on-nss.ts'],
    },
    {
      ...base,
      displayName: 'fips',
      testMatch: ON_EVERY_MODULE.map((file) => `<rootDir>/test/${file}.test.ts`),
      setupFiles: ['<rootDir>/test/helpers/on-fips.ts'],
    },
    // The envelope-encryption client (client/, a workspace of its own) against a real service on SoftHSM.
    {
      ...base,
      displayName: 'client',
      roots: ['<rootDir>/client/test'],
      testMatch: ['**/*.test.ts'],
      transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'client/tsconfig.json' }] },
    },
  ],
};
