import type { Logger } from 'pino';
import type { Config } from '../config';
import { prepareEmbeddedSoftHsm } from './embedded-softhsm';
import { Pkcs11Hsm } from './pkcs11-hsm';

/** Opens the configured HSM: the vendor's module, or the embedded SoftHSM token (created on first use). */
export function openHsm(config: Config, logger: Logger, sessions = config.hsmSessions): Promise<Pkcs11Hsm> {
  const hsm = config.hsm;
  const pin = hsm.kind === 'embedded-softhsm' ? prepareEmbeddedSoftHsm(hsm.tokenDir).pin : hsm.pin;
  return Pkcs11Hsm.open({
    modulePath: hsm.modulePath,
    tokenLabel: hsm.tokenLabel,
    pin,
    sessions,
    cryptoCalls: config.hsmCryptoCalls,
    createTokenIfMissing: hsm.kind === 'embedded-softhsm',
    logger,
  });
}
