/**
 * Opens the HSM of the data directory in KMS_DATA_DIR (as every service process and the CLI do,
 * creating the embedded token when needed) at the wall-clock time given in milliseconds, then
 * closes it: several of these started together race for a fresh data directory at one moment,
 * whatever each took to start. Run with tsx: open-at.ts EPOCH_MS
 */
import pino from 'pino';
import { loadConfig } from '../../src/config';
import { openHsm } from '../../src/hsm/open-hsm';

async function main(): Promise<void> {
  const at = Number(process.argv[2]);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - Date.now())));
  const hsm = await openHsm(loadConfig(), pino({ level: 'silent' }), 1);
  await hsm.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`open-at: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
