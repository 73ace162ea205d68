import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { buildApp } from './app';
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

  const app = buildApp({ keys, dataKeys, logger, bodyLimitBytes: config.bodyLimitBytes, validateResponses: options.validateResponses ?? false });
  const server: Server = await new Promise((resolve, reject) => {
    const listening = app.listen(config.port, config.host, () => resolve(listening));
    listening.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info({ url, dataDir: config.dataDir }, 'KMS listening');

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await maintenance.stop();
      await hsm.close();
      store.close();
      logger.info('KMS stopped');
    })());

  return { url, port, hsm, store, maintenance, close };
}
