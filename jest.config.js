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
  'api/signing',
  'api/mac',
  'api/rsa-data',
  'api/derive-shared-secret',
  'api/datakey-pair',
  'api/aliases',
  'api/tags',
  'api/import',
  'api/import-key-pairs',
  'hsm/key-material',
  'hsm/token-layout',
  'hsm/recovery',
  'hsm/signing',
  'hsm/asymmetric-decryption',
  'hsm/key-agreement',
  'hsm/mac',
  'hsm/key-pairs',
  'hsm/key-import',
];

module.exports = {
  maxWorkers: 2,
  // A fresh worker process for every test file. PKCS#11 initialisation (and any native addon's
  // state) is per process: a file that dies before its service's stop() leaves the module
  // initialised, and a reused worker hands that to the next file (CKR_CRYPTOKI_ALREADY_INITIALIZED).
  // Jest reuses workers, and runs a few fast files in its own process, unless a worker memory limit
  // is set; a limit of 0 is jest-worker's "always restart": the worker is killed when it answers a
  // file, before it is given the next (a limit of 1 would be 100% of the machine's memory: numbers
  // up to 1 are a fraction of it). test/unit/process-isolation.test.ts holds Jest to this.
  workerIdleMemoryLimit: 0,
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
