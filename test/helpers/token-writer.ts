/**
 * Another process on the same token: generates key material for the refs on its command line
 * through the service's own HSM layer, without the service's token lock, as another instance or a
 * vendor tool sharing the token would, then exits. Run with tsx:
 *   token-writer.ts TOKEN_LABEL PIN_FILE KEY_ID...
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { DEFAULT_SOFTHSM_MODULE } from '../../src/config';
import { Pkcs11Hsm } from '../../src/hsm/pkcs11-hsm';

async function main(): Promise<void> {
  const [tokenLabel, pinFile, ...keyIds] = process.argv.slice(2);
  if (!tokenLabel || !pinFile) throw new Error('usage: token-writer.ts TOKEN_LABEL PIN_FILE KEY_ID...');
  const pin = readFileSync(pinFile, 'utf8').trim();
  const hsm = await Pkcs11Hsm.open({ modulePath: DEFAULT_SOFTHSM_MODULE, tokenLabel, pin, sessions: 1, logger: pino({ level: 'silent' }) });
  try {
    for (const keyId of keyIds) await hsm.generateKey({ keyId, version: 0 });
  } finally {
    await hsm.close();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`token-writer: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
