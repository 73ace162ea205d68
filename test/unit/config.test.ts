import { availableParallelism } from 'node:os';
import path from 'node:path';
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

describe('the module capabilities set one by one', () => {
  it('leave every capability to the profile by default', () => {
    expect(loadConfig({}).hsmCapabilities).toEqual({ gcmIv: 'auto', cryptoCalls: 'auto' });
  });

  it('read each capability', () => {
    const config = loadConfig({ KMS_PKCS11_GCM_IV: 'token-params', KMS_PKCS11_CRYPTO_CALLS: 'async' });
    expect(config.hsmCapabilities).toEqual({ gcmIv: 'token-params', cryptoCalls: 'async' });
  });

  it.each([
    ['KMS_PKCS11_GCM_IV', 'hsm'],
    ['KMS_PKCS11_CRYPTO_CALLS', 'threads'],
  ])('refuse %s=%s, naming the values allowed', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name} must be auto, `));
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

describe('KMS_TLS_*', () => {
  it('leaves TLS off by default', () => {
    expect(loadConfig({}).tls).toBeUndefined();
  });

  it('turns HTTPS on with a certificate and its key, TLS 1.2 or later by default', () => {
    expect(loadConfig({ KMS_TLS_CERT_FILE: 'tls/cert.pem', KMS_TLS_KEY_FILE: '/etc/kms/key.pem' }).tls).toEqual({
      certFile: path.resolve('tls/cert.pem'),
      keyFile: '/etc/kms/key.pem',
      minVersion: 'TLSv1.2',
    });
    const mutual = loadConfig({ KMS_TLS_CERT_FILE: '/c', KMS_TLS_KEY_FILE: '/k', KMS_TLS_CLIENT_CA_FILE: '/ca', KMS_TLS_MIN_VERSION: 'TLSv1.3' }).tls;
    expect(mutual).toMatchObject({ clientCaFile: '/ca', minVersion: 'TLSv1.3' });
  });

  it.each([
    [{ KMS_TLS_CERT_FILE: '/c' }, 'KMS_TLS_CERT_FILE is set: set KMS_TLS_KEY_FILE too'],
    [{ KMS_TLS_KEY_FILE: '/k' }, 'KMS_TLS_KEY_FILE is set: set KMS_TLS_CERT_FILE too'],
    [{ KMS_TLS_CLIENT_CA_FILE: '/ca' }, 'KMS_TLS_CLIENT_CA_FILE is set without KMS_TLS_CERT_FILE and KMS_TLS_KEY_FILE: client certificates need HTTPS'],
    [{ KMS_TLS_CERT_FILE: '/c', KMS_TLS_KEY_FILE: '/k', KMS_TLS_MIN_VERSION: 'TLSv1.1' }, 'KMS_TLS_MIN_VERSION must be TLSv1.2 or TLSv1.3, got "TLSv1.1"'],
  ])('refuses %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(new ConfigError(message));
  });
});
