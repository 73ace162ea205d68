import { availableParallelism } from 'node:os';
import { ConfigError, loadConfig } from '../../src/config';

describe('KMS_WORKERS', () => {
  it('defaults to one worker per CPU, at most four', () => {
    const expected = Math.min(availableParallelism(), 4);
    expect(loadConfig({ KMS_DATA_DIR: '/tmp/kms-config-test' }).workers).toBe(expected);
    expect(loadConfig({ KMS_DATA_DIR: '/tmp/kms-config-test', KMS_WORKERS: 'auto' }).workers).toBe(expected);
  });

  it('takes a number from 1 to 64', () => {
    expect(loadConfig({ KMS_WORKERS: '1' }).workers).toBe(1);
    expect(loadConfig({ KMS_WORKERS: '6' }).workers).toBe(6);
  });

  it.each(['0', '65', 'two', '-1'])('refuses %s', (value) => {
    expect(() => loadConfig({ KMS_WORKERS: value })).toThrow(ConfigError);
  });
});

describe('KMS_PKCS11_CRYPTO_CALLS', () => {
  const external = { KMS_PKCS11_MODULE: '/usr/lib/vendor/libpkcs11.so', KMS_PKCS11_PIN: '1234' };

  it('defaults to inline calls for the embedded SoftHSM and worker threads for any other module', () => {
    expect(loadConfig({}).hsmCryptoCalls).toBe('sync');
    expect(loadConfig(external).hsmCryptoCalls).toBe('async');
    expect(loadConfig({ ...external, KMS_PKCS11_CRYPTO_CALLS: 'auto' }).hsmCryptoCalls).toBe('async');
  });

  it('can be set either way', () => {
    expect(loadConfig({ KMS_PKCS11_CRYPTO_CALLS: 'async' }).hsmCryptoCalls).toBe('async');
    expect(loadConfig({ ...external, KMS_PKCS11_CRYPTO_CALLS: 'sync' }).hsmCryptoCalls).toBe('sync');
  });

  it('refuses anything else', () => {
    expect(() => loadConfig({ KMS_PKCS11_CRYPTO_CALLS: 'threads' })).toThrow(ConfigError);
  });
});

describe('HSM deadlines and the waiting queue', () => {
  it('default to five seconds and 1024 waiting callers', () => {
    expect(loadConfig({})).toMatchObject({ hsmCallTimeoutMs: 5000, hsmMaxWaiters: 1024 });
  });

  it('can be set', () => {
    expect(loadConfig({ KMS_PKCS11_CALL_TIMEOUT_MS: '250', KMS_PKCS11_MAX_WAITERS: '0' })).toMatchObject({ hsmCallTimeoutMs: 250, hsmMaxWaiters: 0 });
  });

  it.each([['KMS_PKCS11_CALL_TIMEOUT_MS', '0'], ['KMS_PKCS11_CALL_TIMEOUT_MS', 'soon'], ['KMS_PKCS11_MAX_WAITERS', '-1']])('refuses %s=%s', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
  });
});
