import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { auditLogFile } from './audit/audit-log';
import { ConfigError, loadConfig, type Config } from './config';
import { claimDataDirectory } from './data-dir-claim';
import { restrictUmask, warnIfDataDirectoryOpen } from './file-modes';
import { StartError } from './start-error';
import { createLogger, exitAfterFlush, prettyLogs } from './logger';
import type { StartOptions } from './server';
import { serviceUrl } from './service-url';
import { startTlsFiles } from './tls/tls-files';
import { certificateFields, warnIfPlainHttpBeyondLoopback } from './tls/tls-server';

const SHUTDOWN_LIMIT_MS = 60_000;

/**
 * What SIGHUP does in this process: nothing until it serves, then reload the TLS files (a
 * cluster's primary passes it on to every worker). Installed first thing, so that a SIGHUP never
 * takes Node's default action, which would end the process.
 */
let onHangup: () => void = () => undefined;
process.on('SIGHUP', () => onHangup());

/** The message a cluster's primary sends each worker on SIGHUP. */
interface ReloadTls {
  readonly reloadTls: true;
}

function isReloadTls(message: unknown): message is ReloadTls {
  return typeof message === 'object' && message !== null && (message as { reloadTls?: unknown }).reloadTls === true;
}

/** Runs until SIGTERM or SIGINT, then stops gracefully and exits 0 (1 if stopping failed). */
function onSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: finishing requests in flight');
    // A hung HSM call must not keep the process alive for ever.
    setTimeout(() => {
      logger.error({ afterMs: SHUTDOWN_LIMIT_MS }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, SHUTDOWN_LIMIT_MS).unref();
    stop().then(
      () => exitAfterFlush(logger, 0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        exitAfterFlush(logger, 1);
      },
    );
  };
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));
}

/**
 * The service itself is loaded only where it runs: a cluster's primary never loads the HSM
 * module, the database or the HTTP stack, so it stays small.
 */
async function serve(config: Config, logger: Logger, options: Omit<StartOptions, 'logger'> = {}): Promise<void> {
  const { startService } = await import('./server');
  const service = await startService(config, { logger, ...options });
  // The reload logs its own one line: the new certificate, or why the old one stays.
  onHangup = () => void service.reloadTls();
  // A cluster worker hears SIGHUP from its primary (a signal sent to the whole process group reaches it directly too).
  if (options.clusterWorker) {
    process.on('message', (message: unknown) => {
      if (isReloadTls(message)) service.reloadTls();
    });
  }
  onSignals(logger, () => service.close());
}

/** A worker that dies again this soon after it was (re)started is not restarted: something is wrong. */
const RESTART_WINDOW_MS = 10_000;

/**
 * The primary of a cluster: prepares the data directory once, forks the workers (each writes its
 * own audit chain), restarts one that dies after it served, and on a signal stops them all. A
 * worker that fails before it listens (port taken, HSM refusing sessions, ...), or dies again
 * right after a restart, stops the service: restarting it would only fail again.
 */
async function primary(config: Config, logger: Logger): Promise<void> {
  // The first start-up failure a worker sends is the one line printed (see main's catch).
  let reported = false;
  cluster.on('message', (_worker, message: unknown) => {
    if (!isStartFailure(message) || reported) return;
    reported = true;
    reportStartFailure(message.startFailure);
  });
  // The TLS files are checked before the data directory is touched: a bad one is the start's one line.
  const tls = config.tls ? startTlsFiles(config.tls) : undefined;
  await initialiseInWorker();
  const stopMetrics = await serveClusterMetrics(config, logger);
  let stopping = false;
  let failed = false;
  interface Slot {
    readonly index: number;
    readonly startedAt: number;
    readonly restarted: boolean;
    listening: boolean;
  }
  const slots = new Map<Worker, Slot>();
  const fork = (index: number, restarted = false): void => {
    const env = { KMS_WORKER_INDEX: String(index), ...(restarted ? { KMS_WORKER_RESTARTED: '1' } : {}) };
    slots.set(cluster.fork(env), { index, startedAt: Date.now(), restarted, listening: false });
  };
  const stopAll = (): Promise<void> => {
    const exited = [...slots.keys()].map((worker) => new Promise<void>((resolve) => (worker.isDead() ? resolve() : worker.once('exit', () => resolve()))));
    for (const worker of slots.keys()) worker.process.kill('SIGTERM');
    return Promise.all(exited).then(() => undefined);
  };
  // Ready once every worker listens: a client that connects earlier would find only the first.
  let waitingFor = config.workers;
  cluster.on('listening', (worker, address) => {
    const slot = slots.get(worker);
    if (slot) slot.listening = true;
    if (--waitingFor !== 0) return;
    warnIfPlainHttpBeyondLoopback(config, logger);
    const url = serviceUrl(config, address.port);
    logger.info({ url, dataDir: config.dataDir, workers: config.workers, ...(tls ? certificateFields(tls) : {}) }, 'KMS listening');
  });
  onHangup = () => {
    logger.info({ signal: 'SIGHUP', workers: slots.size }, 'reloading the TLS files in every worker');
    const message: ReloadTls = { reloadTls: true };
    for (const worker of slots.keys()) if (worker.isConnected()) worker.send(message);
  };
  cluster.on('exit', (worker, code, signal) => {
    const slot = slots.get(worker);
    slots.delete(worker);
    if (!slot) return;
    if (stopping) {
      // A worker that did not stop cleanly (e.g. its audit chain could not be closed) fails the
      // stop; one that died earlier and was replaced does not: its replacement is the one asked.
      if (code !== 0) failed = true;
      return;
    }
    if (!slot.listening || (slot.restarted && Date.now() - slot.startedAt < RESTART_WINDOW_MS)) {
      logger.error({ worker: slot.index, code, signal }, slot.listening ? 'worker died again soon after it started; stopping' : 'worker failed to start; stopping');
      stopping = true;
      void stopAll().then(() => process.exit(1));
      return;
    }
    logger.error({ worker: slot.index, code, signal }, 'worker died; starting another');
    fork(slot.index, true);
  });
  for (let index = 0; index < config.workers; index++) fork(index);
  onSignals(logger, async () => {
    stopping = true;
    await Promise.all([stopAll(), stopMetrics()]);
    if (failed) throw new Error('a worker did not stop cleanly');
    logger.info('KMS stopped');
  });
}

/**
 * The cluster's metrics, when they are on: the primary aggregates every worker's (loading
 * prom-client, not the service), answers workers scraped on the API's port, and serves
 * KMS_METRICS_PORT itself. Before the workers start, so that a port in use stops the start. Returns
 * what closes its listener.
 */
async function serveClusterMetrics(config: Config, logger: Logger): Promise<() => Promise<void>> {
  if (config.metrics.kind === 'off') return async () => undefined;
  const { clusterMetrics } = await import('./metrics/cluster-metrics');
  const source = clusterMetrics();
  if (config.metrics.kind !== 'listener') return async () => undefined;
  const { listenForMetrics } = await import('./metrics/metrics-listener');
  const listener = await listenForMetrics(config.metrics, { source, token: config.metrics.token });
  logger.info({ metricsUrl: listener.url }, 'metrics listening');
  return () => listener.close();
}

/**
 * Prepares the data directory in a worker of its own that exits when done: the HSM module (and,
 * with SoftHSM, every token object) is loaded there, not in the long-lived primary. On a failure
 * the primary prints the line the initialiser sent and exits too.
 */
function initialiseInWorker(): Promise<void> {
  const initialiser = cluster.fork({ KMS_CLUSTER_ROLE: 'initialise' });
  return new Promise((resolve) => {
    initialiser.once('exit', (code) => {
      if (code === 0) resolve();
      else process.exit(1);
    });
  });
}

async function initialise(config: Config, logger: Logger): Promise<void> {
  const { initialiseDataDirectory } = await import('./server');
  await initialiseDataDirectory(config, logger);
  process.exit(0);
}

async function main(): Promise<void> {
  // Before anything is created: nothing the service writes is open to other users (file-modes.ts).
  restrictUmask();
  const config = loadConfig();
  // Every asynchronous PKCS#11 call occupies a libuv worker thread for its whole duration: give the
  // HSM sessions their threads and keep the default four for file system and DNS work.
  // This must happen before anything uses the thread pool.
  process.env.UV_THREADPOOL_SIZE ??= String(config.hsmSessions + 4);
  const logger = createLogger(config.logLevel, undefined, { pretty: prettyLogs(process.stdout.isTTY === true) });
  if (config.workers <= 1) {
    claimDataDirectory(config.dataDir);
    warnIfDataDirectoryOpen(config.dataDir, logger);
    return serve(config, logger);
  }
  if (cluster.isPrimary) {
    claimDataDirectory(config.dataDir);
    warnIfDataDirectoryOpen(config.dataDir, logger);
    return primary(config, logger);
  }
  if (process.env.KMS_CLUSTER_ROLE === 'initialise') return initialise(config, logger);
  const index = Number(process.env.KMS_WORKER_INDEX ?? 0);
  return serve(config, logger.child({ worker: index }), {
    auditLogPath: auditLogFile(config.dataDir, index),
    maintenance: index === 0,
    // The initialiser reconciled the data directory just before the first workers started.
    reconciledAtStart: process.env.KMS_WORKER_RESTARTED === undefined,
    clusterWorker: true,
  });
}

/** A cluster worker's start-up failure, sent to the primary, which prints it once for all workers. */
interface StartFailure {
  readonly startFailure: string;
}

function isStartFailure(message: unknown): message is StartFailure {
  return typeof message === 'object' && message !== null && typeof (message as { startFailure?: unknown }).startFailure === 'string';
}

/** Prints a start-up failure as the one line the README promises (the primary's, in a cluster). */
function reportStartFailure(line: string): void {
  process.stderr.write(`kms: ${line}\n`);
}

main().catch((error: unknown) => {
  // Start-up failures are one line, without a stack: expected ones say what is wrong, any other
  // says what failed (KMS_LOG_LEVEL=debug adds the stack, for a bug report).
  const expected = error instanceof ConfigError || error instanceof StartError;
  const message = error instanceof Error ? error.message : String(error);
  const line = expected ? message : `start-up failed: ${message.split('\n')[0]}`;
  if (!expected && error instanceof Error && /^(debug|trace)$/.test(process.env.KMS_LOG_LEVEL ?? '')) process.stderr.write(`${error.stack}\n`);
  // Every worker of a cluster would print the same line (a port in use fails them all): the
  // primary prints it once instead.
  if (cluster.isWorker && process.send) {
    const failure: StartFailure = { startFailure: line };
    process.send(failure, () => process.exit(1));
    return;
  }
  reportStartFailure(line);
  process.exit(1);
});
