import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Server as NetServer, type AddressInfo } from 'node:net';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { buildApp } from './app';
import type { AuditSink } from './audit/audit-sink';
import { ServiceAudit } from './audit/service-audit';
import type { Config } from './config';
import { openHsm } from './hsm/open-hsm';
import type { Pkcs11Hsm } from './hsm/pkcs11-hsm';
import { ensureSystemKeys } from './hsm/system-keys';
import { InFlight } from './http/in-flight';
import { Authenticator } from './identity/authenticator';
import { CredentialService } from './identity/credentials';
import { systemClock, type Clock } from './kms/context';
import { DataKeyService } from './kms/datakey-service';
import { KeyService } from './kms/key-service';
import { KeyMaintenance } from './kms/maintenance';
import { ChangeWatch } from './store/change-watch';
import { CredentialStore } from './store/credential-store';
import { openDatabase } from './store/database';
import { KeyStore } from './store/key-store';

export interface RunningService {
  readonly url: string;
  readonly port: number;
  readonly hsm: Pkcs11Hsm;
  readonly store: KeyStore;
  readonly credentials: CredentialService;
  readonly maintenance: KeyMaintenance;
  /** Stops accepting requests, lets those in flight finish, then closes the HSM, the audit log and the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly validateResponses?: boolean;
  /** The audit chain this process writes (a cluster worker has its own); default config.auditLogPath. */
  readonly auditLogPath?: string;
  /** Run the deletion and reconciliation sweeps (one process of a cluster does). Default true. */
  readonly maintenance?: boolean;
  /**
   * The data directory was reconciled just before this start (by a cluster's initialiser): the
   * sweeps only start their timer, without a first pass of their own. Default false.
   */
  readonly reconciledAtStart?: boolean;
  /**
   * A cluster worker: it logs "worker listening", and the primary says "KMS listening" (with the
   * URL) once every worker listens.
   */
  readonly clusterWorker?: boolean;
}

/** Opens the HSM, then the database, then serves: config → HSM → store → app → listen. */
export async function startService(config: Config, options: StartOptions): Promise<RunningService> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });

  const hsm = await openHsm(config, logger);
  let db: Database.Database;
  let audit: AuditSink;
  try {
    db = openDatabase(config.databasePath);
    audit = new ServiceAudit(options.auditLogPath ?? config.auditLogPath, { logger, headIntervalMs: config.auditHeadIntervalMs });
  } catch (error) {
    await hsm.close();
    throw error;
  }
  await ensureSystemKeys(hsm, db);
  const runMaintenance = options.maintenance ?? true;

  const changes = new ChangeWatch(db);
  const store = new KeyStore(db, changes);
  const credentials = new CredentialService(new CredentialStore(db, changes), hsm, clock);
  await bootstrapAdminCredential(config, credentials, logger);
  const keys = new KeyService({ store, hsm, clock, logger, region: config.region, maxKeysPerProject: config.maxKeysPerProject });
  const dataKeys = new DataKeyService({ keys, hsm });
  const maintenance = new KeyMaintenance({ store, hsm, clock, logger });
  if (runMaintenance) {
    if (!options.reconciledAtStart) {
      maintenance.reportMismatches();
      await maintenance.run();
    }
    maintenance.start(config.sweepIntervalMs);
  }

  const inFlight = new InFlight();
  const app = buildApp({
    keys,
    dataKeys,
    authenticator: new Authenticator(credentials, clock),
    audit,
    logger,
    inFlight,
    bodyLimitBytes: config.bodyLimitBytes,
    validateResponses: options.validateResponses ?? false,
  });
  let draining = false;
  const server: Server = createServer((req, res) => {
    // While stopping, every response closes its connection, so clients move to another instance.
    if (draining) res.shouldKeepAlive = false;
    app(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (options.clusterWorker) logger.info({ port }, 'worker listening');
  else logger.info({ url, dataDir: config.dataDir }, 'KMS listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      draining = true;
      await drain(server);
      // Clients that hung up leave their operations running: let them finish before the HSM closes.
      await inFlight.idle();
      await maintenance.stop();
      await hsm.close();
      try {
        await audit.close();
      } finally {
        db.close();
      }
      logger.info('KMS stopped');
    })());

  return { url, port, hsm, store, credentials, maintenance, close };
}

/**
 * What the first start of a data directory must do once, before several processes serve it: the
 * embedded token, the system keys, the admin credential, and one reconciliation pass.
 */
export async function initialiseDataDirectory(config: Config, logger: Logger): Promise<void> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const hsm = await openHsm(config, logger, 1);
  try {
    const db = openDatabase(config.databasePath);
    try {
      await ensureSystemKeys(hsm, db);
      const changes = new ChangeWatch(db);
      await bootstrapAdminCredential(config, new CredentialService(new CredentialStore(db, changes), hsm, systemClock), logger);
      const maintenance = new KeyMaintenance({ store: new KeyStore(db, changes), hsm, clock: systemClock, logger });
      maintenance.reportMismatches();
      await maintenance.run();
    } finally {
      db.close();
    }
  } finally {
    await hsm.close();
  }
}

/**
 * On the very first start there is no credential, so nobody could call the service: create an
 * admin credential (an AK/SK pair and a token, allowed everything) for the default project and
 * write it where only the service's user can read it.
 */
async function bootstrapAdminCredential(config: Config, credentials: CredentialService, logger: Logger): Promise<void> {
  if (!credentials.isEmpty() || existsSync(config.adminCredentialsPath)) return;
  const options = { projectId: config.defaultProjectId, actions: ['kms:*'], description: 'admin credential created on first start' };
  const accessKey = await credentials.createAccessKey(options);
  const token = credentials.createToken(options);
  const content = {
    project_id: config.defaultProjectId,
    access_key: accessKey.access_key,
    secret_key: accessKey.secret_key,
    token: token.token,
    token_id: token.token_id,
    actions: options.actions,
  };
  const temporary = `${config.adminCredentialsPath}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  renameSync(temporary, config.adminCredentialsPath);
  logger.warn(
    { file: config.adminCredentialsPath, projectId: config.defaultProjectId, accessKey: accessKey.access_key, tokenId: token.token_id },
    'created the admin credential of the default project; keep the file safe, or delete it once you have made your own credentials',
  );
}

const IDLE_GRACE_MS = 500;
const DRAIN_LIMIT_MS = 30_000;

/**
 * Stops accepting connections and waits for requests in flight. http.Server#close would also cut
 * idle keep-alive connections at once, racing a request already on its way over one of them; so
 * the listener is closed first, idle connections are closed after a short grace, and connections
 * still busy after the limit are cut.
 */
function drain(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const idle = setTimeout(() => server.closeIdleConnections(), IDLE_GRACE_MS);
    const limit = setTimeout(() => server.closeAllConnections(), DRAIN_LIMIT_MS);
    NetServer.prototype.close.call(server, () => {
      clearTimeout(idle);
      clearTimeout(limit);
      resolve();
    });
  });
}
