import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { Server as NetServer, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { buildApp } from './app';
import { expressHttpClasses } from './http/express-classes';
import { ServiceAudit } from './audit/service-audit';
import { auditedCredentialChange, cliChain } from './cli/cli-audit';
import type { Config } from './config';
import type { MetadataStore } from './domain/repositories';
import { openCore, type Core } from './open-core';
import type { MetricsAnswer } from './http/metrics-route';
import { metricsFromPrimary, shareWithPrimary } from './metrics/cluster-metrics';
import { listenForMetrics, type MetricsListener } from './metrics/metrics-listener';
import { ServiceMetrics } from './metrics/service-metrics';
import type { Pkcs11Hsm } from './hsm/pkcs11-hsm';
import { Readiness } from './health/readiness';
import { InFlight } from './http/in-flight';
import { notePeerAddresses } from './http/peer';
import { protocolRefusals } from './http/protocol-refusals';
import { Authenticator } from './identity/authenticator';
import { CredentialService } from './identity/credentials';
import { systemClock, type Clock } from './kms/context';
import { DataKeyService } from './kms/datakey-service';
import { SigningService } from './kms/signing-service';
import { MacService } from './kms/mac-service';
import { KeyAgreementService } from './kms/key-agreement-service';
import { DataService } from './kms/data-service';
import { RsaDataCipher } from './kms/rsa-data';
import { RandomService } from './kms/random-service';
import { ReEncryptService } from './kms/reencrypt-service';
import { DataKeyPairService } from './kms/datakey-pair-service';
import { Sealer } from './kms/sealing';
import { GrantService } from './kms/grant-service';
import { QuotaService } from './kms/quota-service';
import { KeyMaintenance, type MaintenanceDeps } from './kms/maintenance';
import { KeyRotator } from './kms/key-rotation';
import { SealUsage } from './kms/seal-usage';
import { StartError } from './start-error';
import { serviceUrl } from './service-url';
import { startTlsFiles } from './tls/tls-files';
import { certificateFields, tlsOptions, TlsReloader, warnIfExpired, warnIfPlainHttpBeyondLoopback } from './tls/tls-server';

export interface RunningService {
  readonly url: string;
  readonly port: number;
  readonly hsm: Pkcs11Hsm;
  readonly store: MetadataStore;
  readonly credentials: CredentialService;
  readonly maintenance: KeyMaintenance;
  /** This process's seal counts (flushed on a timer and at close). */
  readonly usage: SealUsage;
  readonly rotator: KeyRotator;
  /**
   * Reads the TLS files again and serves them to new connections (SIGHUP); false when they cannot
   * be served (the previous certificate stays) or TLS is off.
   */
  reloadTls(): boolean;
  /** Where GET /metrics is served on a listener of its own (KMS_METRICS_PORT), if it is. */
  readonly metricsUrl?: string;
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

/** Opens the core (src/open-core.ts: HSM, database, audit chain, services), then serves: config → HSM → store → app → listen. */
export async function startService(config: Config, options: StartOptions): Promise<RunningService> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  // Before anything is opened: a TLS file that cannot be served is a one-line start error.
  const tls = config.tls ? { config: config.tls, material: startTlsFiles(config.tls) } : undefined;

  // Made first, so that the HSM's and the audit log's observers count from the start; a cluster
  // worker answers the primary's scrapes from here on.
  const metrics = config.metrics.kind === 'off' ? undefined : new ServiceMetrics();
  if (metrics && options.clusterWorker) shareWithPrimary(metrics.registry);
  const core = await openCore(config, {
    logger,
    clock,
    dataDir: 'create',
    hsmObserver: metrics?.hsm,
    rotationObserver: metrics?.keys,
    storeObserver: metrics?.store,
    audit: (store) =>
      new ServiceAudit(options.auditLogPath ?? config.auditLogPath, {
        logger,
        headIntervalMs: config.auditHeadIntervalMs,
        observer: metrics?.audit,
        sync: config.auditSync,
        instance: config.instanceId,
        checkpoints: { repository: store.auditCheckpoints, instance: config.instanceId, intervalMs: config.auditCheckpointIntervalMs },
      }),
  });
  const { hsm, audit, credentials, store } = core;
  metrics?.hsm.watch(() => hsm.state());
  metrics?.store.watch(store);
  const runMaintenance = options.maintenance ?? true;

  const { grantAccess, rotator, usage, keys, rotation, tags, imports, aliases } = core.keys;
  metrics?.keys.watch({
    keysByState: () => store.keys.countByState(clock()),
    sealsCounted: () => usage.counted,
    mostSeals: () => store.rotations.mostSeals(),
    sealBudget: config.sealBudget,
  });
  const dataKeys = new DataKeyService({ keys, hsm, usage });
  const sealer = new Sealer(hsm, usage);
  const rsa = new RsaDataCipher(hsm);
  const dataOperations = {
    data: new DataService({ keys, sealer, rsa }),
    random: new RandomService(hsm),
    reEncrypt: new ReEncryptService({ keys, sealer, rsa }),
  };
  const signing = new SigningService({ keys, hsm });
  const macs = new MacService({ keys, hsm });
  const keyAgreement = new KeyAgreementService({ keys, hsm });
  const dataKeyPairs = new DataKeyPairService({ keys, sealer });
  const grants = new GrantService({
    store: store.grants,
    access: grantAccess,
    keys,
    principalExists: (principalId) => credentials.principalExists(principalId),
    clock,
    logger,
    maxGrantsPerKey: config.maxGrantsPerKey,
  });
  const quotas = new QuotaService({ keys: store.keys, grants: store.grants, clock, maxKeysPerProject: config.maxKeysPerProject, maxGrantsPerKey: config.maxGrantsPerKey });
  const maintenance = new KeyMaintenance({ store, hsm, clock, logger, rotator });
  // Until the server listens, a step that fails stops what was started and closes what was opened.
  const stopAfterFailedStart = async (): Promise<void> => {
    await maintenance.stop();
    await usage.stop().catch(() => undefined);
    await core.close();
  };

  const inFlight = new InFlight();
  let draining = false;
  const readiness = new Readiness({
    hsm,
    database: () => store.ping(),
    audit: () => audit.checkWritable(),
    draining: () => draining,
    deadlineMs: Math.min(config.hsmCallTimeoutMs, READY_HSM_DEADLINE_MS),
    logger,
  });
  let app: Awaited<ReturnType<typeof buildApp>>;
  try {
    await bootstrapAdminCredential(config, core, logger);
    if (runMaintenance) {
      // A restarted cluster worker reconciles beside workers that may be creating keys right now,
      // and so does any process on a shared database, beside the other instances.
      if (!options.reconciledAtStart) await reconcileAtStart({ store, hsm, clock, logger, rotator }, !options.clusterWorker && !isShared(store));
      maintenance.start(config.sweepIntervalMs);
    }
    // Every serving process counts its own seals (a cluster's workers each), and rotates past the budget.
    usage.start(config.sealCountFlushMs);
    app = await buildApp({
      readiness,
      keys,
      dataKeys,
      dataOperations,
      grants,
      quotas,
      rotation,
      signing,
      macs,
      keyAgreement,
      aliases,
      dataKeyPairs,
      tags,
      imports,
      authenticator: new Authenticator(credentials, clock, { requireClientCertificate: config.tls?.clientCaFile !== undefined }),
      audit,
      logger,
      inFlight,
      bodyLimitBytes: config.bodyLimitBytes,
      accessLog: config.accessLog,
      docs: config.docs,
      validateResponses: options.validateResponses ?? false,
      metrics: metricsOnApiPort(config, metrics, options.clusterWorker ?? false),
      requestObserver: metrics?.requests,
    });
  } catch (error) {
    await stopAfterFailedStart();
    throw error;
  }
  const protocol = protocolRefusals(logger);
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // While stopping, every response closes its connection, so clients move to another instance.
    if (draining) res.shouldKeepAlive = false;
    if (!protocol.refuses(req, res)) app(req, res);
  };
  // node:http would answer these with an empty 400 and 417 itself: they get the API's body instead.
  // Idle keep-alive connections are kept longer than clients and load balancers keep theirs (Node
  // closes them after 5 s, undici after 4 s, load balancers after about 60 s): the client then
  // always closes first, and never sends a request on a connection the server is closing
  // (ECONNRESET). Headers must still arrive within the timeout after that.
  // Requests and responses are born with Express's prototypes (src/http/express-classes.ts).
  const httpOptions = { requireHostHeader: false, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, headersTimeout: KEEP_ALIVE_TIMEOUT_MS + 1000, ...expressHttpClasses(app) };
  let server: Server | HttpsServer;
  let reloader: TlsReloader | undefined;
  if (tls) {
    const secure = createHttpsServer({ ...httpOptions, ...tlsOptions(tls.config, tls.material) }, onRequest);
    // A handshake that fails (an old protocol, a client that does not trust the certificate) has no request to answer.
    secure.on('tlsClientError', (error: NodeJS.ErrnoException) => logger.debug({ code: error.code, reason: error.message }, 'TLS handshake failed'));
    reloader = new TlsReloader(secure, tls.config, logger);
    server = secure;
  } else {
    server = createServer(httpOptions, onRequest);
  }
  server.on('checkExpectation', onRequest);
  protocol.attach(server);
  notePeerAddresses(server);
  let metricsListener: MetricsListener | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(new StartError(`cannot listen on ${config.host}:${config.port}: ${error.code ?? error.message}`, { cause: error })),
      );
      server.listen(config.port, config.host, () => resolve());
    });
    // A cluster's metrics listener is the primary's (src/main.ts): it aggregates every worker's.
    if (metrics && config.metrics.kind === 'listener' && !options.clusterWorker) {
      metricsListener = await listenForMetrics(config.metrics, { source: metrics, token: config.metrics.token });
      logger.info({ metricsUrl: metricsListener.url }, 'metrics listening');
    }
  } catch (error) {
    if (server.listening) await drain(server);
    await stopAfterFailedStart();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const url = serviceUrl(config, port);
  if (options.clusterWorker) logger.info({ port, pid: process.pid }, 'worker listening');
  else {
    warnIfPlainHttpBeyondLoopback(config, logger);
    logger.info({ url, dataDir: config.dataDir, ...(tls ? certificateFields(tls.material) : {}) }, 'KMS listening');
  }
  if (tls) warnIfExpired(tls.material, logger);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      draining = true;
      await Promise.all([drain(server), metricsListener?.close()]);
      // Clients that hung up leave their operations running: let them finish before the HSM closes.
      await inFlight.idle();
      await maintenance.stop();
      // Before the database closes: the counts of this process's last seals are kept.
      await usage.stop().catch((error: unknown) => logger.error({ err: error }, 'could not write the last seal counts'));
      await core.close();
      logger.info('KMS stopped');
    })());

  const reloadTls = (): boolean => {
    if (reloader) return reloader.reload();
    logger.info('TLS is off (no KMS_TLS_CERT_FILE): nothing to reload');
    return false;
  };
  return { url, port, hsm, store, credentials, maintenance, usage, rotator, reloadTls, metricsUrl: metricsListener?.url, close };
}

/**
 * GET /metrics on the API's port, when configured so (KMS_METRICS_TOKEN_FILE alone): this process's
 * metrics, or in a cluster worker the whole cluster's, which the primary aggregates.
 */
function metricsOnApiPort(config: Config, metrics: ServiceMetrics | undefined, clusterWorker: boolean): MetricsAnswer | undefined {
  if (!metrics || config.metrics.kind !== 'api-port') return undefined;
  return { source: clusterWorker ? metricsFromPrimary(metrics.contentType) : metrics, token: config.metrics.token };
}

/**
 * What the first start of a data directory must do once, before several processes serve it: the
 * embedded token, the system keys, the admin credential, and one reconciliation pass.
 */
export async function initialiseDataDirectory(config: Config, logger: Logger): Promise<void> {
  const core = await openCore(config, { logger, dataDir: 'create', hsmSessions: 1 });
  try {
    await bootstrapAdminCredential(config, core, logger);
    // The initialiser runs before any worker: no other process serves the data directory (nor,
    // unless the database is shared, its store).
    await reconcileAtStart({ store: core.store, hsm: core.hsm, clock: systemClock, logger, rotator: core.keys.rotator }, !isShared(core.store));
  } finally {
    await core.close();
  }
}

/**
 * Whether other instances may be writing to this store right now: PostgreSQL is shared by every
 * instance on it (KMS_DATABASE_URL), while the embedded database is the data directory's alone.
 */
function isShared(store: MetadataStore): boolean {
  return store.kind === 'postgres';
}

/**
 * The start-up pass: finishes or rolls back what a crash interrupted, then logs what the token and
 * the database still disagree on. `alone`: no other process serves the data directory (a single
 * process, or a cluster's initialiser before its workers start), so every unfinished key creation
 * was cut by a crash and is rolled back now; otherwise only those past the grace that protects a
 * creation under way in another worker (the periodic sweep's rule).
 */
async function reconcileAtStart(deps: MaintenanceDeps, alone: boolean): Promise<void> {
  const pass = new KeyMaintenance(alone ? { ...deps, provisioningGraceMs: 0 } : deps);
  await pass.run();
  // After the pass, so that material it just rolled back is not reported as unnamed.
  await pass.reportMismatches();
}

/**
 * On the very first start there is no credential, so nobody could call the service: create an
 * admin credential (an AK/SK pair and a token, allowed everything) for the default project and
 * write it where only the service's user can read it. Each is recorded in audit-cli.log, the chain
 * of credential changes made outside the API, as the tool records its own (`"source":"first-start"`,
 * identifiers only): the record is written and synced before the credential commits.
 */
async function bootstrapAdminCredential(config: Config, core: Core, logger: Logger): Promise<void> {
  if (!(await core.credentials.isEmpty()) || existsSync(config.adminCredentialsPath)) return;
  // Instances starting together on one fresh database: the first makes it, the others find it made.
  await core.store.bootstrap.exclusive('first-start', async () => {
    if (await core.credentials.isEmpty()) await makeAdminCredential(config, core, logger);
  });
}

async function makeAdminCredential(config: Config, core: Core, logger: Logger): Promise<void> {
  const options = { projectId: config.defaultProjectId, actions: ['kms:*'], description: 'admin credential created on first start' };
  const chain = cliChain(config);
  const created = (id: string, kind: string) => ({
    action: 'create' as const,
    credential: { id, kind, project_id: options.projectId, actions: options.actions, expires_at: null },
    result: 'OK' as const,
    source: 'first-start' as const,
  });
  const accessKey = await auditedCredentialChange(core, chain, (credentials) => credentials.createAccessKey(options), (made) => created(made.access_key, 'aksk'));
  const token = await auditedCredentialChange(core, chain, (credentials) => credentials.createToken(options), (made) => created(made.token_id, 'token'));
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

const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** How long GET /readyz waits for the HSM: within a probe's usual timeout (Kubernetes: 1 s by default). */
const READY_HSM_DEADLINE_MS = 1000;
const IDLE_GRACE_MS = 500;
const DRAIN_LIMIT_MS = 30_000;

/**
 * Stops accepting connections and waits for requests in flight. http.Server#close would also cut
 * idle keep-alive connections at once, racing a request already on its way over one of them; so
 * the listener is closed first, idle connections are closed after a short grace, and connections
 * still busy after the limit are cut.
 */
function drain(server: Server | HttpsServer): Promise<void> {
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
