import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { prepareEmbeddedSoftHsm } from './embedded-softhsm';
import type { HsmObserver } from './hsm-observer';
import { Pkcs11Hsm } from './pkcs11-hsm';
import { TokenLock } from './token-lock';

/** Opens the configured HSM: the vendor's module, or the embedded SoftHSM token (created on first use); `observer` is told of every operation (the metrics). */
export async function openHsm(config: Config, logger: Logger, sessions = config.hsmSessions, observer?: HsmObserver): Promise<Pkcs11Hsm> {
  const hsm = config.hsm;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // The lock may live beside a shared token (KMS_SOFTHSM_DIR) not made yet.
  mkdirSync(path.dirname(config.hsmLockPath), { recursive: true, mode: 0o700 });
  // Shared by every process serving the data directory (config.hsmLockPath).
  const writeLock = new TokenLock(config.hsmLockPath);
  try {
    const pin = hsm.kind === 'embedded-softhsm' ? await prepareEmbeddedSoftHsm(hsm, writeLock, logger) : hsm.pin;
    return await Pkcs11Hsm.open({
      modulePath: hsm.modulePath,
      initArgs: hsm.kind === 'external' ? hsm.initArgs : undefined,
      profile: config.hsmProfile,
      tokenLabel: hsm.tokenLabel,
      pin,
      sessions,
      capabilities: config.hsmCapabilities,
      callTimeoutMs: config.hsmCallTimeoutMs,
      generateTimeoutMs: config.hsmGenerateTimeoutMs,
      maxWaiters: config.hsmMaxWaiters,
      writeLock,
      logger,
      observer,
    });
  } catch (error) {
    writeLock.close();
    throw error;
  }
}
