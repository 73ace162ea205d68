import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
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

describe('KMS_PKCS11_GENERATE_TIMEOUT_MS', () => {
  it("defaults to a minute, or the call deadline when that is longer", () => {
    expect(loadConfig({}).hsmGenerateTimeoutMs).toBe(60_000);
    expect(loadConfig({ KMS_PKCS11_CALL_TIMEOUT_MS: '90000' }).hsmGenerateTimeoutMs).toBe(90_000);
  });

  it('can be set, down to the call deadline', () => {
    expect(loadConfig({ KMS_PKCS11_GENERATE_TIMEOUT_MS: '120000' }).hsmGenerateTimeoutMs).toBe(120_000);
    expect(loadConfig({ KMS_PKCS11_CALL_TIMEOUT_MS: '250', KMS_PKCS11_GENERATE_TIMEOUT_MS: '250' }).hsmGenerateTimeoutMs).toBe(250);
  });

  it.each(['0', 'soon', '-1', '3600001'])('refuses %s', (value) => {
    expect(() => loadConfig({ KMS_PKCS11_GENERATE_TIMEOUT_MS: value })).toThrow(/^KMS_PKCS11_GENERATE_TIMEOUT_MS must be/);
  });

  it('refuses a generation deadline shorter than the call deadline, naming both', () => {
    expect(() => loadConfig({ KMS_PKCS11_GENERATE_TIMEOUT_MS: '4000' })).toThrow(
      new ConfigError('KMS_PKCS11_GENERATE_TIMEOUT_MS (4000) must be at least KMS_PKCS11_CALL_TIMEOUT_MS (5000)'),
    );
  });
});

describe('KMS_AUDIT_SYNC', () => {
  it('defaults to always: no response before its record is written and fdatasync\'ed', () => {
    expect(loadConfig({}).auditSync).toBe('always');
  });

  it('takes always or batch, and refuses anything else', () => {
    expect(loadConfig({ KMS_AUDIT_SYNC: 'batch' }).auditSync).toBe('batch');
    expect(loadConfig({ KMS_AUDIT_SYNC: 'always' }).auditSync).toBe('always');
    expect(() => loadConfig({ KMS_AUDIT_SYNC: 'never' })).toThrow('KMS_AUDIT_SYNC must be always or batch, got "never"');
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

describe('the metrics settings', () => {
  let dir: string;
  const write = (name: string, content: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, content, { mode: 0o600 });
    return file;
  };
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-config-metrics-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('are off by default', () => {
    expect(loadConfig({}).metrics).toEqual({ kind: 'off' });
  });

  it('serve a listener of their own on loopback with KMS_METRICS_PORT, on KMS_METRICS_HOST if set', () => {
    expect(loadConfig({ KMS_METRICS_PORT: '9464' }).metrics).toEqual({ kind: 'listener', host: '127.0.0.1', port: 9464, token: undefined });
    expect(loadConfig({ KMS_METRICS_PORT: '9464', KMS_METRICS_HOST: '0.0.0.0' }).metrics).toMatchObject({ host: '0.0.0.0' });
  });

  it('serve the API port behind the token of KMS_METRICS_TOKEN_FILE alone, trimmed; with a port, that listener asks for it', () => {
    const file = write('token', '  abcdefghijklmnop0123\n');
    expect(loadConfig({ KMS_METRICS_TOKEN_FILE: file }).metrics).toEqual({ kind: 'api-port', token: 'abcdefghijklmnop0123' });
    expect(loadConfig({ KMS_METRICS_TOKEN_FILE: file, KMS_METRICS_PORT: '0' }).metrics).toEqual({ kind: 'listener', host: '127.0.0.1', port: 0, token: 'abcdefghijklmnop0123' });
  });

  it.each([
    [{ KMS_METRICS_PORT: 'nine' }, /^KMS_METRICS_PORT must be a whole number, got "nine"$/],
    [{ KMS_METRICS_PORT: '70000' }, /^KMS_METRICS_PORT must be between 0 and 65535$/],
    [{ KMS_METRICS_PORT: '8080', PORT: '8080' }, /^KMS_METRICS_PORT must differ from PORT/],
    [{ KMS_METRICS_HOST: '0.0.0.0' }, /^KMS_METRICS_HOST is set without KMS_METRICS_PORT$/],
    [{ KMS_METRICS_TOKEN_FILE: '/nonexistent/token' }, /^KMS_METRICS_TOKEN_FILE cannot be read: \/nonexistent\/token \(ENOENT\)$/],
  ])('refuse %j in one line', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it.each([
    ['empty', '\n'],
    ['too short', 'short-token\n'],
    ['two words', 'abcdefghijklmnop qrstuvwxyz012345\n'],
  ])('refuse a token file that is %s, without printing what it holds', (_what, content) => {
    const file = write(`bad-${content.length}`, content);
    let message = '';
    try {
      loadConfig({ KMS_METRICS_TOKEN_FILE: file });
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/^KMS_METRICS_TOKEN_FILE must hold one token of 16 to 512 /);
    expect(message).not.toContain(content.trim() || '\u0000');
  });
});

describe('settings of several instances', () => {
  it('name the instance after the host by default, and refuse a name that cannot name a chain', () => {
    expect(loadConfig({}).instanceId).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
    expect(loadConfig({ KMS_INSTANCE_ID: 'kms-a.eu_1' }).instanceId).toBe('kms-a.eu_1');
    expect(() => loadConfig({ KMS_INSTANCE_ID: 'kms a' })).toThrow(ConfigError);
    expect(() => loadConfig({ KMS_INSTANCE_ID: 'x'.repeat(65) })).toThrow(ConfigError);
  });

  it('share an embedded token and its lock through KMS_SOFTHSM_DIR, and a lock file through KMS_HSM_LOCK_FILE', () => {
    expect(loadConfig({ KMS_DATA_DIR: '/var/lib/kms' })).toMatchObject({ hsmLockPath: '/var/lib/kms/hsm.lock', hsm: { tokenDir: '/var/lib/kms/softhsm' } });
    expect(loadConfig({ KMS_DATA_DIR: '/var/lib/kms', KMS_SOFTHSM_DIR: '/srv/token' })).toMatchObject({ hsmLockPath: '/srv/token/hsm.lock', hsm: { tokenDir: '/srv/token' } });
    expect(loadConfig({ KMS_DATA_DIR: '/var/lib/kms', KMS_HSM_LOCK_FILE: '/run/kms/hsm.lock' }).hsmLockPath).toBe('/run/kms/hsm.lock');
    expect(() => loadConfig({ KMS_SOFTHSM_DIR: '/srv/token', KMS_PKCS11_MODULE: '/usr/lib/vendor.so', KMS_PKCS11_PIN: '1234' })).toThrow('KMS_SOFTHSM_DIR is set with KMS_PKCS11_MODULE');
  });

  it('checkpoint the audit chains every five seconds by default', () => {
    expect(loadConfig({}).auditCheckpointIntervalMs).toBe(5000);
    expect(loadConfig({ KMS_AUDIT_CHECKPOINT_SECONDS: '30' }).auditCheckpointIntervalMs).toBe(30_000);
    expect(() => loadConfig({ KMS_AUDIT_CHECKPOINT_SECONDS: '0' })).toThrow(ConfigError);
  });
});

describe('the database settings', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-config-db-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keep the embedded SQLite store without KMS_DATABASE_URL, and refuse its companions alone', () => {
    expect(loadConfig({}).database).toEqual({ kind: 'sqlite' });
    for (const name of ['KMS_DATABASE_PASSWORD_FILE', 'KMS_DATABASE_CA_FILE', 'KMS_DATABASE_POOL_SIZE']) {
      expect(() => loadConfig({ [name]: '1' })).toThrow(`${name} is set without KMS_DATABASE_URL`);
    }
  });

  it('select PostgreSQL by KMS_DATABASE_URL, a pool of 10 by default, sized by KMS_DATABASE_POOL_SIZE', () => {
    expect(loadConfig({ KMS_DATABASE_URL: 'postgres://kms@db.internal:5433/kms' }).database).toEqual({
      kind: 'postgres',
      url: 'postgres://kms@db.internal:5433/kms',
      password: undefined,
      sslMode: 'disable',
      caFile: undefined,
      poolSize: 10,
    });
    expect(loadConfig({ KMS_DATABASE_URL: 'postgresql://kms@db/kms', KMS_DATABASE_POOL_SIZE: '32' }).database).toMatchObject({ kind: 'postgres', poolSize: 32 });
    expect(() => loadConfig({ KMS_DATABASE_URL: 'postgres://kms@db/kms', KMS_DATABASE_POOL_SIZE: '0' })).toThrow(ConfigError);
  });

  it("keep the URL's password apart from the URL, which is safe to log, and never repeat it in a refusal", () => {
    const config = loadConfig({ KMS_DATABASE_URL: 'postgres://kms:s3cr%40t-pw@db/kms' });
    expect(config.database).toMatchObject({ url: 'postgres://kms@db/kms', password: 's3cr@t-pw' });
    expect(config.database.kind === 'postgres' && config.database.url).not.toContain('s3cr');
    expect(() => loadConfig({ KMS_DATABASE_URL: 'mysql://kms:s3cr3t-pw@db/kms' })).toThrow(/must start with postgres:\/\//);
    for (const bad of ['postgres://kms:s3cr3t-pw@db', 'postgres://kms:s3cr3t-pw@db/kms?application_name=x', 'postgres://kms:s3cr3t-pw@db/kms?sslmode=prefer', 'not a url s3cr3t-pw']) {
      let message = '';
      try {
        loadConfig({ KMS_DATABASE_URL: bad });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/KMS_DATABASE_URL/);
      expect(message).not.toContain('s3cr3t-pw');
    }
  });

  it('read the password from KMS_DATABASE_PASSWORD_FILE, only its line end dropped, and refuse a password in both places', () => {
    const file = path.join(dir, 'password');
    writeFileSync(file, ' pass word \n');
    expect(loadConfig({ KMS_DATABASE_URL: 'postgres://kms@db/kms', KMS_DATABASE_PASSWORD_FILE: file }).database).toMatchObject({ password: ' pass word ' });
    expect(() => loadConfig({ KMS_DATABASE_URL: 'postgres://kms:other@db/kms', KMS_DATABASE_PASSWORD_FILE: file })).toThrow(/in one place/);
    expect(() => loadConfig({ KMS_DATABASE_URL: 'postgres://kms@db/kms', KMS_DATABASE_PASSWORD_FILE: path.join(dir, 'missing') })).toThrow(/cannot be read/);
  });

  it('verify the server against KMS_DATABASE_CA_FILE (verify-full unless the URL says otherwise), and refuse it with sslmode=disable', () => {
    const ca = path.join(dir, 'ca.pem');
    expect(loadConfig({ KMS_DATABASE_URL: 'postgres://kms@db/kms', KMS_DATABASE_CA_FILE: ca }).database).toMatchObject({ sslMode: 'verify-full', caFile: ca, url: 'postgres://kms@db/kms' });
    expect(loadConfig({ KMS_DATABASE_URL: 'postgres://kms@db/kms?sslmode=verify-ca', KMS_DATABASE_CA_FILE: ca }).database).toMatchObject({ sslMode: 'verify-ca' });
    expect(() => loadConfig({ KMS_DATABASE_URL: 'postgres://kms@db/kms?sslmode=disable', KMS_DATABASE_CA_FILE: ca })).toThrow(/sslmode=disable/);
  });
});
