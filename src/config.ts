import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { AUDIT_SYNC_POLICIES, auditLogFile, isInstanceName, type AuditSync } from './audit/audit-log';
import {
  CRYPTO_CALL_MODES,
  GCM_IV_SOURCES,
  isProfileName,
  PROFILE_NAMES,
  type CapabilityOverrides,
  type Configured,
  type ProfileName,
} from './hsm/profile-names';

/** Where the PKCS#11 module and token come from. */
export type HsmConfig =
  | {
      /** No module configured: SoftHSMv2 with a token the service creates under the data directory. */
      readonly kind: 'embedded-softhsm';
      readonly modulePath: string;
      readonly tokenLabel: string;
      /** KMS_SOFTHSM_DIR, default `softhsm` in the data directory: its configuration, PIN and tokens. */
      readonly tokenDir: string;
    }
  | {
      /** Any vendor's PKCS#11 module with an initialised token. */
      readonly kind: 'external';
      readonly modulePath: string;
      readonly tokenLabel: string;
      /** Read once at start-up; never logged. */
      readonly pin: string;
      /** The module's initialisation string for C_Initialize (KMS_PKCS11_INIT_ARGS), e.g. NSS's database directory. */
      readonly initArgs?: string;
    };

/** HTTPS (KMS_TLS_*): the files are read at start and again on SIGHUP (src/tls), never kept here. */
export interface TlsConfig {
  /** PEM: the server's certificate, then any intermediate CA certificates of its chain. */
  readonly certFile: string;
  /** PEM: the certificate's private key, unencrypted (keep the file 0600). */
  readonly keyFile: string;
  /** The oldest protocol accepted: TLSv1.2 (default) or TLSv1.3. */
  readonly minVersion: TlsMinVersion;
  /**
   * mTLS: PEM certificates of the CAs whose client certificates are trusted. When set, every
   * request that needs a credential must also come over a connection with a client certificate
   * one of them issued (a second factor, checked before the signature).
   */
  readonly clientCaFile?: string;
}

export const TLS_MIN_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsMinVersion = (typeof TLS_MIN_VERSIONS)[number];

/**
 * Where GET /metrics is served (Prometheus text format), if anywhere: off unless configured. On a
 * listener of its own (KMS_METRICS_PORT, on KMS_METRICS_HOST, loopback by default), where only
 * what can reach that address can scrape; or on the API's port behind a bearer token read from
 * KMS_METRICS_TOKEN_FILE (a token file with the port requires the token there too).
 */
export type MetricsConfig =
  | { readonly kind: 'off' }
  | { readonly kind: 'listener'; readonly host: string; readonly port: number; readonly token: string | undefined }
  | { readonly kind: 'api-port'; readonly token: string };

export interface Config {
  readonly port: number;
  readonly host: string;
  /** HTTPS when set; plain HTTP (the loopback default, for development) when not. */
  readonly tls?: TlsConfig;
  readonly dataDir: string;
  readonly databasePath: string;
  /**
   * This instance's name among those sharing one database (KMS_INSTANCE_ID, default the host
   * name): its audit chains' checkpoints are kept under it.
   */
  readonly instanceId: string;
  /**
   * The token lock (src/hsm/token-lock.ts): KMS_HSM_LOCK_FILE, default hsm.lock in the data
   * directory, or beside a token shared through KMS_SOFTHSM_DIR. Instances on one machine that
   * share one token share one lock.
   */
  readonly hsmLockPath: string;
  /** The hash-chained audit trail (JSON lines). */
  readonly auditLogPath: string;
  /** Where the first start writes the admin credential of the default project (mode 0600). */
  readonly adminCredentialsPath: string;
  /** The project the first start's admin credential belongs to. */
  readonly defaultProjectId: string;
  readonly hsm: HsmConfig;
  /** How the module differs where the service depends on it (src/hsm/profiles.ts); `auto` detects it. */
  readonly hsmProfile: ProfileName | 'auto';
  /** Logged-in PKCS#11 sessions kept open per process; each runs one operation at a time. */
  readonly hsmSessions: number;
  /**
   * The profile's capabilities set one by one (`auto`: the profile's): who makes the GCM IV
   * (KMS_PKCS11_GCM_IV) and how encrypt and decrypt are called (KMS_PKCS11_CRYPTO_CALLS: `async` on libuv worker threads, so that a slow
   * network HSM never blocks the event loop; `sync` inline, for an in-process module that answers in
   * microseconds, where the thread hop costs more than the call).
   */
  readonly hsmCapabilities: CapabilityOverrides;
  /**
   * How long one HSM operation may take, waiting for a session and for a module recovery included,
   * in milliseconds; beyond it the request gets 503 KMS.0104. Synchronous PKCS#11 calls cannot be
   * cut short (see Pkcs11HsmOptions.callTimeoutMs).
   */
  readonly hsmCallTimeoutMs: number;
  /**
   * How long one key generation may take, in milliseconds (KMS_PKCS11_GENERATE_TIMEOUT_MS, default
   * 60000, never less than hsmCallTimeoutMs): a key pair's generation is a search for primes,
   * seconds for RSA-4096 even in software (see Pkcs11HsmOptions.generateTimeoutMs).
   */
  readonly hsmGenerateTimeoutMs: number;
  /** Callers that may wait for a free HSM session per process; beyond it, an immediate 503 KMS.0104. */
  readonly hsmMaxWaiters: number;
  /** Server processes (Node cluster workers) sharing the port; 1 serves from the main process. */
  readonly workers: number;
  /** Region name reported as `realm` in key details. */
  readonly region: string;
  readonly logLevel: string;
  /** One info line per request (operation, status, ms, request id, principal): KMS_ACCESS_LOG on|off. */
  readonly accessLog: boolean;
  /** The contract and its page (GET /openapi.yaml, /openapi.json, /docs/) without a credential: KMS_DOCS on|off. */
  readonly docs: boolean;
  /** Largest request body accepted, in bytes. */
  readonly bodyLimitBytes: number;
  /** Keys a project may hold (KMS.1105 beyond it). */
  readonly maxKeysPerProject: number;
  /** Grants one key may hold (KMS.2404 beyond it). */
  readonly maxGrantsPerKey: number;
  /** How often pending deletions and interrupted key creations are swept, in milliseconds. */
  readonly sweepIntervalMs: number;
  /** How often each audit chain's head is logged (when it moved), in milliseconds. */
  readonly auditHeadIntervalMs: number;
  /** How often each audit chain's head is checkpointed into the database (when it moved), in milliseconds. */
  readonly auditCheckpointIntervalMs: number;
  /**
   * When an audit record counts as done, and the response may leave (KMS_AUDIT_SYNC): `always`,
   * written and fdatasync'ed (a power cut keeps it); `batch`, written without the sync (a crash of
   * the process keeps it, a power cut may not).
   */
  readonly auditSync: AuditSync;
  /**
   * Encryptions per CMK material version after which the key is rotated, scheduled rotation on or
   * not: the share of the GCM IV budget (2^32 with random 96-bit IVs, NIST SP 800-38D) this
   * service uses. Default 2^30, a quarter of it.
   */
  readonly sealBudget: number;
  /** How often each process adds its counted seals to the database, in milliseconds. */
  readonly sealCountFlushMs: number;
  /** GET /metrics: off, on its own listener, or on the API's port behind a token. */
  readonly metrics: MetricsConfig;
  /** The metadata store: SQLite at databasePath unless KMS_DATABASE_URL names PostgreSQL. */
  readonly database: DatabaseConfig;
}

/** libpq's sslmode values the PostgreSQL store supports (not `allow`/`prefer`: no silent fall-back to plain text). */
export const POSTGRES_SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type PostgresSslMode = (typeof POSTGRES_SSL_MODES)[number];

/** The PostgreSQL store (KMS_DATABASE_URL and the KMS_DATABASE_* settings), which several instances share. */
export interface PostgresDatabaseConfig {
  readonly kind: 'postgres';
  /** postgres://user@host:port/database, without its password and sslmode: safe to log. */
  readonly url: string;
  /** From KMS_DATABASE_PASSWORD_FILE, or the URL's; read once, never logged. */
  readonly password: string | undefined;
  /** The URL's sslmode; verify-full when only KMS_DATABASE_CA_FILE is set, disable when neither is. */
  readonly sslMode: PostgresSslMode;
  /** PEM: the CAs the server's certificate is checked against (KMS_DATABASE_CA_FILE), read at open. */
  readonly caFile: string | undefined;
  /** Connections of the pool (KMS_DATABASE_POOL_SIZE, default 10), beside the change feed's one. */
  readonly poolSize: number;
}

/** Where the metadata lives: the data directory's SQLite file (the default), or PostgreSQL. */
export type DatabaseConfig = { readonly kind: 'sqlite' } | PostgresDatabaseConfig;

export const DEFAULT_SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}`);
  return value;
}

/**
 * KMS_PKCS11_GENERATE_TIMEOUT_MS: key generation's own deadline. A generation is also an HSM
 * operation, so one shorter than the call deadline would be raised to it silently: it is refused
 * instead, naming both settings.
 */
function generateTimeout(env: Env, callTimeoutMs: number): number {
  const value = integer(env, 'KMS_PKCS11_GENERATE_TIMEOUT_MS', Math.max(60_000, callTimeoutMs), 10, 3_600_000);
  if (value < callTimeoutMs) {
    throw new ConfigError(`KMS_PKCS11_GENERATE_TIMEOUT_MS (${value}) must be at least KMS_PKCS11_CALL_TIMEOUT_MS (${callTimeoutMs})`);
  }
  return value;
}

/**
 * KMS_WORKERS: server processes sharing the port. The default, `auto`, is one per CPU up to
 * MAX_AUTO_WORKERS: each worker holds its own HSM sessions (KMS_PKCS11_SESSIONS each) and memory,
 * and more than a few rarely pay on one host.
 */
const MAX_AUTO_WORKERS = 4;

function workerCount(env: Env): number {
  const raw = env.KMS_WORKERS;
  if (raw === undefined || raw === '' || raw === 'auto') return Math.min(availableParallelism(), MAX_AUTO_WORKERS);
  return integer(env, 'KMS_WORKERS', 1, 1, 64);
}

/** A capability of the module's profile set by configuration: one of `allowed`, or `auto` (the profile's). */
function capability<T extends string>(env: Env, name: string, allowed: readonly T[]): Configured<T> {
  const raw = env[name] || 'auto';
  if (raw === 'auto') return 'auto';
  const found = allowed.find((value) => value === raw);
  if (found === undefined) throw new ConfigError(`${name} must be auto, ${allowed.join(', ')}, got "${raw}"`);
  return found;
}

function capabilities(env: Env): CapabilityOverrides {
  return Object.freeze({
    gcmIv: capability(env, 'KMS_PKCS11_GCM_IV', GCM_IV_SOURCES),
    cryptoCalls: capability(env, 'KMS_PKCS11_CRYPTO_CALLS', CRYPTO_CALL_MODES),
  });
}

function readPin(env: Env): string | undefined {
  if (env.KMS_PKCS11_PIN) return env.KMS_PKCS11_PIN;
  const file = env.KMS_PKCS11_PIN_FILE;
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    // The path is configuration, not a secret; the file's content never reaches a message.
    throw new ConfigError(`KMS_PKCS11_PIN_FILE cannot be read: ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
  const pin = text.trim();
  if (!pin) throw new ConfigError(`KMS_PKCS11_PIN_FILE is empty: ${file}`);
  return pin;
}

/**
 * A bearer token is sent in a header: at least 16 characters (it is the only thing between the
 * network and the metrics) of the token68 set (RFC 6750), so that it can be sent as it is.
 */
const METRICS_TOKEN = /^[A-Za-z0-9._~+/-]{16,512}=*$/;

/** KMS_METRICS_TOKEN_FILE's token, read once; undefined when it is not set. */
function readMetricsToken(env: Env): string | undefined {
  const file = env.KMS_METRICS_TOKEN_FILE;
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`KMS_METRICS_TOKEN_FILE cannot be read: ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
  const token = text.trim();
  // The token itself never reaches a message.
  if (!METRICS_TOKEN.test(token)) throw new ConfigError(`KMS_METRICS_TOKEN_FILE must hold one token of 16 to 512 letters, digits or -._~+/ characters: ${file}`);
  return token;
}

/** KMS_METRICS_PORT, KMS_METRICS_HOST, KMS_METRICS_TOKEN_FILE: see {@link MetricsConfig}. */
function metricsConfig(env: Env, apiPort: number): MetricsConfig {
  const token = readMetricsToken(env);
  if (env.KMS_METRICS_PORT === undefined || env.KMS_METRICS_PORT === '') {
    if (env.KMS_METRICS_HOST) throw new ConfigError('KMS_METRICS_HOST is set without KMS_METRICS_PORT');
    return token === undefined ? { kind: 'off' } : { kind: 'api-port', token };
  }
  const port = integer(env, 'KMS_METRICS_PORT', 0, 0, 65535);
  if (port !== 0 && port === apiPort) throw new ConfigError('KMS_METRICS_PORT must differ from PORT (leave it unset to serve /metrics on the API port behind KMS_METRICS_TOKEN_FILE)');
  return { kind: 'listener', host: env.KMS_METRICS_HOST || '127.0.0.1', port, token };
}

/** KMS_LOG_LEVEL: one of pino's levels, or `silent`. */
function logLevel(env: Env): string {
  const raw = env.KMS_LOG_LEVEL || 'info';
  const known = [...Object.keys(pino.levels.values), 'silent'];
  if (!known.includes(raw)) throw new ConfigError(`KMS_LOG_LEVEL must be one of ${known.join(', ')}, got "${raw}"`);
  return raw;
}

function onOff(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'on') return true;
  if (raw === 'off') return false;
  throw new ConfigError(`${name} must be on or off, got "${raw}"`);
}

function auditSync(env: Env): AuditSync {
  const raw = env.KMS_AUDIT_SYNC || 'always';
  const known = AUDIT_SYNC_POLICIES.find((policy) => policy === raw);
  if (known === undefined) throw new ConfigError(`KMS_AUDIT_SYNC must be ${AUDIT_SYNC_POLICIES.join(' or ')}, got "${raw}"`);
  return known;
}

/** KMS_PKCS11_PROFILE: a known module's profile, or `auto` (detected from C_GetInfo). */
function hsmProfile(env: Env): ProfileName | 'auto' {
  const raw = env.KMS_PKCS11_PROFILE || 'auto';
  if (raw === 'auto' || isProfileName(raw)) return raw;
  throw new ConfigError(`KMS_PKCS11_PROFILE must be auto, ${PROFILE_NAMES.join(', ')}, got "${raw}"`);
}

function projectId(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) throw new ConfigError('KMS_DEFAULT_PROJECT_ID must be 1 to 64 letters, digits, "_" or "-"');
  return value;
}

/** KMS_TLS_CERT_FILE and KMS_TLS_KEY_FILE together turn HTTPS on; the rest only mean something with them. */
function tlsConfig(env: Env): TlsConfig | undefined {
  const certFile = env.KMS_TLS_CERT_FILE || undefined;
  const keyFile = env.KMS_TLS_KEY_FILE || undefined;
  const clientCaFile = env.KMS_TLS_CLIENT_CA_FILE || undefined;
  const rawMinVersion = env.KMS_TLS_MIN_VERSION || 'TLSv1.2';
  if (!certFile && !keyFile) {
    if (clientCaFile) throw new ConfigError('KMS_TLS_CLIENT_CA_FILE is set without KMS_TLS_CERT_FILE and KMS_TLS_KEY_FILE: client certificates need HTTPS');
    if (env.KMS_TLS_MIN_VERSION) throw new ConfigError('KMS_TLS_MIN_VERSION is set without KMS_TLS_CERT_FILE and KMS_TLS_KEY_FILE');
    return undefined;
  }
  if (!certFile) throw new ConfigError('KMS_TLS_KEY_FILE is set: set KMS_TLS_CERT_FILE too');
  if (!keyFile) throw new ConfigError('KMS_TLS_CERT_FILE is set: set KMS_TLS_KEY_FILE too');
  const minVersion = TLS_MIN_VERSIONS.find((version) => version === rawMinVersion);
  if (minVersion === undefined) throw new ConfigError(`KMS_TLS_MIN_VERSION must be ${TLS_MIN_VERSIONS.join(' or ')}, got "${rawMinVersion}"`);
  return Object.freeze({
    certFile: path.resolve(certFile),
    keyFile: path.resolve(keyFile),
    minVersion,
    ...(clientCaFile ? { clientCaFile: path.resolve(clientCaFile) } : {}),
  });
}

function readSecretFile(name: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    // The path is configuration, not a secret; the file's content never reaches a message.
    throw new ConfigError(`${name} cannot be read: ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
  // Only the line end an editor adds is dropped: a password may begin or end with spaces.
  const secret = text.replace(/\r?\n$/, '');
  if (!secret) throw new ConfigError(`${name} is empty: ${file}`);
  return secret;
}

/** KMS_DATABASE_URL, KMS_DATABASE_PASSWORD_FILE, KMS_DATABASE_CA_FILE, KMS_DATABASE_POOL_SIZE: see {@link DatabaseConfig}. */
function databaseConfig(env: Env): DatabaseConfig {
  const raw = env.KMS_DATABASE_URL;
  if (!raw) {
    for (const name of ['KMS_DATABASE_PASSWORD_FILE', 'KMS_DATABASE_CA_FILE', 'KMS_DATABASE_POOL_SIZE']) {
      if (env[name]) throw new ConfigError(`${name} is set without KMS_DATABASE_URL`);
    }
    return { kind: 'sqlite' };
  }
  return postgresDatabaseConfig(raw, env);
}

/**
 * A PostgreSQL URL (KMS_DATABASE_URL, or the target of `kms store copy --to`) with the
 * KMS_DATABASE_PASSWORD_FILE, KMS_DATABASE_CA_FILE and KMS_DATABASE_POOL_SIZE of `env`.
 */
export function postgresDatabaseConfig(raw: string, env: Env = process.env): PostgresDatabaseConfig {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // The URL may hold a password: never repeated in a message.
    throw new ConfigError('KMS_DATABASE_URL must be a URL: postgres://user@host:port/database');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') throw new ConfigError(`KMS_DATABASE_URL must start with postgres:// (got ${url.protocol}//)`);
  const database = decodeURIComponent(url.pathname.slice(1));
  if (!database || database.includes('/')) throw new ConfigError('KMS_DATABASE_URL must name one database: postgres://user@host:port/database');
  if (!url.hostname && !url.searchParams.get('host')) throw new ConfigError('KMS_DATABASE_URL must name a host (or ?host=/socket/directory)');
  for (const parameter of url.searchParams.keys()) {
    if (parameter !== 'sslmode' && parameter !== 'host') throw new ConfigError(`KMS_DATABASE_URL: the parameter ${parameter} is not supported (only sslmode and host)`);
  }
  const caFile = env.KMS_DATABASE_CA_FILE ? path.resolve(env.KMS_DATABASE_CA_FILE) : undefined;
  const rawSslMode = url.searchParams.get('sslmode') ?? (caFile ? 'verify-full' : 'disable');
  const sslMode = POSTGRES_SSL_MODES.find((mode) => mode === rawSslMode);
  if (sslMode === undefined) throw new ConfigError(`KMS_DATABASE_URL: sslmode must be ${POSTGRES_SSL_MODES.join(', ')}, got "${rawSslMode}"`);
  if (caFile && sslMode === 'disable') throw new ConfigError('KMS_DATABASE_CA_FILE is set with sslmode=disable');

  let password = url.password ? decodeURIComponent(url.password) : undefined;
  if (env.KMS_DATABASE_PASSWORD_FILE) {
    if (password !== undefined) throw new ConfigError('KMS_DATABASE_URL holds a password and KMS_DATABASE_PASSWORD_FILE is set: give it in one place');
    password = readSecretFile('KMS_DATABASE_PASSWORD_FILE', env.KMS_DATABASE_PASSWORD_FILE);
  }
  url.password = '';
  url.searchParams.delete('sslmode');
  return Object.freeze({
    kind: 'postgres',
    url: url.toString(),
    password,
    sslMode,
    caFile,
    poolSize: integer(env, 'KMS_DATABASE_POOL_SIZE', 10, 1, 1000),
  });
}

/** KMS_INSTANCE_ID, or the host name: letters, digits and `.-_`, at most 64. */
function instanceId(env: Env): string {
  const id = env.KMS_INSTANCE_ID || hostname();
  if (!isInstanceName(id)) {
    throw new ConfigError(`KMS_INSTANCE_ID must be 1 to 64 letters, digits, '.', '-' or '_'${env.KMS_INSTANCE_ID ? '' : ` (the host name ${JSON.stringify(id)} is not: set it)`}`);
  }
  return id;
}

/** Reads the whole configuration once; throws {@link ConfigError} on the first bad value. */
export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(env.KMS_DATA_DIR || 'data');
  const modulePath = env.KMS_PKCS11_MODULE;
  const tokenLabel = env.KMS_PKCS11_TOKEN_LABEL || 'kms';
  if (tokenLabel.length > 32) throw new ConfigError('KMS_PKCS11_TOKEN_LABEL must be at most 32 characters');
  const pin = readPin(env);

  let hsm: HsmConfig;
  if (modulePath) {
    if (!pin) throw new ConfigError('KMS_PKCS11_MODULE is set: set KMS_PKCS11_PIN or KMS_PKCS11_PIN_FILE too');
    hsm = { kind: 'external', modulePath, tokenLabel, pin, initArgs: env.KMS_PKCS11_INIT_ARGS || undefined };
  } else {
    if (pin) throw new ConfigError('a PIN is configured without KMS_PKCS11_MODULE; the embedded token manages its own PIN');
    if (env.KMS_PKCS11_INIT_ARGS) throw new ConfigError('KMS_PKCS11_INIT_ARGS is set without KMS_PKCS11_MODULE; the embedded SoftHSM takes none');
    hsm = { kind: 'embedded-softhsm', modulePath: DEFAULT_SOFTHSM_MODULE, tokenLabel, tokenDir: path.resolve(env.KMS_SOFTHSM_DIR || path.join(dataDir, 'softhsm')) };
  }
  if (modulePath && env.KMS_SOFTHSM_DIR) throw new ConfigError('KMS_SOFTHSM_DIR is set with KMS_PKCS11_MODULE; it places the embedded token only');
  // A token shared by instances on one machine (KMS_SOFTHSM_DIR) is guarded by one lock beside it.
  const hsmLockPath = path.resolve(env.KMS_HSM_LOCK_FILE || (env.KMS_SOFTHSM_DIR && hsm.kind === 'embedded-softhsm' ? path.join(hsm.tokenDir, 'hsm.lock') : path.join(dataDir, 'hsm.lock')));

  const port = integer(env, 'PORT', 8080, 0, 65535);
  const hsmCallTimeoutMs = integer(env, 'KMS_PKCS11_CALL_TIMEOUT_MS', 5000, 10, 600_000);
  return Object.freeze({
    port,
    host: env.KMS_HOST || '127.0.0.1',
    tls: tlsConfig(env),
    dataDir,
    databasePath: path.join(dataDir, 'kms.sqlite'),
    instanceId: instanceId(env),
    hsmLockPath,
    auditLogPath: auditLogFile(dataDir),
    adminCredentialsPath: path.join(dataDir, 'admin-credentials.json'),
    defaultProjectId: projectId(env.KMS_DEFAULT_PROJECT_ID || 'default'),
    hsm: Object.freeze(hsm),
    hsmProfile: hsmProfile(env),
    hsmSessions: integer(env, 'KMS_PKCS11_SESSIONS', 8, 1, 256),
    hsmCapabilities: capabilities(env),
    hsmCallTimeoutMs,
    hsmGenerateTimeoutMs: generateTimeout(env, hsmCallTimeoutMs),
    hsmMaxWaiters: integer(env, 'KMS_PKCS11_MAX_WAITERS', 1024, 0, 1_000_000),
    workers: workerCount(env),
    region: env.KMS_REGION || 'local',
    logLevel: logLevel(env),
    accessLog: onOff(env, 'KMS_ACCESS_LOG', true),
    docs: onOff(env, 'KMS_DOCS', true),
    bodyLimitBytes: integer(env, 'KMS_BODY_LIMIT_BYTES', 65536, 1024, 16 * 1024 * 1024),
    maxKeysPerProject: integer(env, 'KMS_MAX_KEYS_PER_PROJECT', 100000, 1, 10_000_000),
    maxGrantsPerKey: integer(env, 'KMS_MAX_GRANTS_PER_KEY', 100, 1, 100_000),
    sweepIntervalMs: integer(env, 'KMS_SWEEP_INTERVAL_SECONDS', 60, 1, 86400) * 1000,
    auditHeadIntervalMs: integer(env, 'KMS_AUDIT_HEAD_INTERVAL_SECONDS', 60, 1, 86400) * 1000,
    auditCheckpointIntervalMs: integer(env, 'KMS_AUDIT_CHECKPOINT_SECONDS', 5, 1, 3600) * 1000,
    auditSync: auditSync(env),
    sealBudget: integer(env, 'KMS_SEAL_BUDGET', 2 ** 30, 1, 2 ** 32),
    sealCountFlushMs: integer(env, 'KMS_SEAL_COUNT_FLUSH_SECONDS', 10, 1, 3600) * 1000,
    metrics: Object.freeze(metricsConfig(env, port)),
    database: databaseConfig(env),
  });
}
