import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** The configuration template shipped in the repository's hsm/ folder. */
const CONF_TEMPLATE = path.resolve(__dirname, '..', '..', 'hsm', 'softhsm2.conf.template');

export interface EmbeddedSoftHsm {
  /** The user PIN of the embedded token, kept in a file readable by the owner only. */
  readonly pin: string;
  readonly confPath: string;
}

function writePrivateFile(file: string, content: string): void {
  // Write then rename, so that a crash never leaves a half-written file behind.
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode: 0o600 });
  renameSync(temporary, file);
}

/**
 * Prepares the embedded SoftHSM under `dir`: its configuration (SOFTHSM2_CONF is set for this
 * process before the module is loaded), its token directory, and the token's user PIN, generated
 * on first start. The token itself is initialised by the HSM layer when it does not exist yet.
 *
 * When SOFTHSM2_CONF is already set, that SoftHSM configuration is used as it is: the operator
 * chose where tokens live, and the embedded token is created there under its label.
 */
export function prepareEmbeddedSoftHsm(dir: string): EmbeddedSoftHsm {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const confPath = process.env.SOFTHSM2_CONF || writeConfiguration(dir);
  const pinPath = path.join(dir, 'user.pin');
  if (!existsSync(pinPath)) writePrivateFile(pinPath, `${randomBytes(24).toString('hex')}\n`);
  const pin = readFileSync(pinPath, 'utf8').trim();
  return { pin, confPath };
}

function writeConfiguration(dir: string): string {
  const tokenDir = path.join(dir, 'tokens');
  mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  const confPath = path.join(dir, 'softhsm2.conf');
  const conf = softHsmConfiguration(tokenDir);
  if (!existsSync(confPath) || readFileSync(confPath, 'utf8') !== conf) writePrivateFile(confPath, conf);
  process.env.SOFTHSM2_CONF = confPath;
  return confPath;
}

/** The SoftHSM configuration for tokens kept in `tokenDir`, from the template in hsm/. */
export function softHsmConfiguration(tokenDir: string): string {
  return readFileSync(CONF_TEMPLATE, 'utf8').replaceAll('@TOKEN_DIR@', tokenDir);
}
