import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { HsmConfig } from '../config';
import type { TokenLock } from './token-lock';
import { createTokenIfMissing } from './token-setup';

/** The configuration template shipped in the repository's hsm/ folder. */
const CONF_TEMPLATE = path.resolve(__dirname, '..', '..', 'hsm', 'softhsm2.conf.template');

type EmbeddedSoftHsmConfig = Extract<HsmConfig, { kind: 'embedded-softhsm' }>;

function writePrivateFile(file: string, content: string): void {
  // Write then rename, so that a crash never leaves a half-written file behind.
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode: 0o600 });
  renameSync(temporary, file);
}

/**
 * Prepares the embedded SoftHSM under its directory and returns the token's user PIN: the SoftHSM
 * configuration (SOFTHSM2_CONF is set for this process before the module is loaded), the token
 * directory, and on the first start of a data directory the PIN and the token itself.
 *
 * Every process of the service (the cluster's initialiser and workers, the command-line tool) comes
 * through here, possibly at the same moment on a fresh data directory. The token is created once,
 * under the token lock, by the first process that finds it not created yet; a marker file written
 * afterwards tells all later processes that the token exists, so that they never create one, even
 * when SoftHSM briefly does not list it while another process rewrites its file.
 *
 * When SOFTHSM2_CONF is already set, that SoftHSM configuration is used as it is: the operator
 * chose where tokens live, and the embedded token is created there under its label.
 */
export async function prepareEmbeddedSoftHsm(hsm: EmbeddedSoftHsmConfig, lock: TokenLock, logger: Logger): Promise<string> {
  const dir = hsm.tokenDir;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (!process.env.SOFTHSM2_CONF) writeConfiguration(dir);
  const pinPath = path.join(dir, 'user.pin');
  const createdMarker = path.join(dir, 'token-created');
  const readPin = (): string => readFileSync(pinPath, 'utf8').trim();
  if (!existsSync(createdMarker)) {
    await lock.hold(() => {
      if (existsSync(createdMarker)) return;
      if (!existsSync(pinPath)) writePrivateFile(pinPath, `${randomBytes(24).toString('hex')}\n`);
      createTokenIfMissing({ modulePath: hsm.modulePath, tokenLabel: hsm.tokenLabel, pin: readPin(), logger });
      writePrivateFile(createdMarker, `${hsm.tokenLabel}\n`);
    });
  }
  return readPin();
}

function writeConfiguration(dir: string): void {
  const tokenDir = path.join(dir, 'tokens');
  mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  const confPath = path.join(dir, 'softhsm2.conf');
  const conf = softHsmConfiguration(tokenDir);
  if (!existsSync(confPath) || readFileSync(confPath, 'utf8') !== conf) writePrivateFile(confPath, conf);
  process.env.SOFTHSM2_CONF = confPath;
}

/** The SoftHSM configuration for tokens kept in `tokenDir`, from the template in hsm/. */
export function softHsmConfiguration(tokenDir: string): string {
  return readFileSync(CONF_TEMPLATE, 'utf8').replaceAll('@TOKEN_DIR@', tokenDir);
}
