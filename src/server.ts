import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { Server as NetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { buildApp } from './app';
import { InFlight } from './http/in-flight';
import type { Config } from './config';
import { prepareEmbeddedSoftHsm } from './hsm/embedded-softhsm';
import { Pkcs11Hsm } from './hsm/pkcs11-hsm';
import { systemClock, type Clock } from './kms/context';
import { DataKeyService } from './kms/datakey-service';
import { KeyService } from './kms/key-service';
import { KeyMaintenance } from './kms/maintenance';
import { KeyStore } from './store/key-store';

export interface RunningService {
  readonly url: string;
  readonly port: number;
  readonly hsm: Pkcs11Hsm;
  readonly store: KeyStore;
  readonly maintenance: KeyMaintenance;
  /** Stops accepting requests, lets those in flight finish, then closes the HSM and the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly validateResponses?: boolean;
}

/** Opens the HSM, then the store, then serves: config → HSM → store → app → listen. */
export async function startService(config: Config, options: StartOptions): Promise<RunningService> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });

  const hsmConfig = config.hsm;
  const pin = hsmConfig.kind === 'embedded-softhsm' ? prepareEmbeddedSoftHsm(hsmConfig.tokenDir).pin : hsmConfig.pin;
  const hsm = await Pkcs11Hsm.open({
    modulePath: hsmConfig.modulePath,
    tokenLabel: hsmConfig.tokenLabel,
    pin,
    sessions: config.hsmSessions,
    createTokenIfMissing: hsmConfig.kind === 'embedded-softhsm',
    logger,
  });

  let store: KeyStore;
  try {
    store = KeyStore.open(config.databasePath);
  } catch (error) {
    await hsm.close();
    throw error;
  }

  const keys = new KeyService({ store, hsm, clock, logger, region: config.region, maxKeysPerProject: config.maxKeysPerProject });
  const dataKeys = new DataKeyService({ keys, hsm });
  const maintenance = new KeyMaintenance({ store, hsm, clock, logger });
  maintenance.reportMismatches();
  await maintenance.run();
  maintenance.start(config.sweepIntervalMs);

  const inFlight = new InFlight();
  const app = buildApp({
    keys,
    dataKeys,
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
  logger.info({ url, dataDir: config.dataDir }, 'KMS listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      draining = true;
      await drain(server);
      // Clients that hung up leave their operations running: let them finish before the HSM closes.
      await inFlight.idle();
      await maintenance.stop();
      await hsm.close();
      store.close();
      logger.info('KMS stopped');
    })());

  return { url, port, hsm, store, maintenance, close };
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
