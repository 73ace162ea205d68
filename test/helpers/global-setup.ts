import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { softHsmConfiguration } from '../../src/hsm/embedded-softhsm';

/**
 * Runs once, in Jest's parent process, before the workers start. Jest gives each test file a copy
 * of process.env, so a SOFTHSM2_CONF set inside a test never reaches the SoftHSM library (it reads
 * the real environment). Setting it here does: the workers inherit it. Every test file then creates
 * its own token, under its own label, in this run's temporary token directory.
 */
export default function globalSetup(): void {
  const root = mkdtempSync(path.join(tmpdir(), 'kms-softhsm-run-'));
  const tokenDir = path.join(root, 'tokens');
  mkdirSync(tokenDir);
  const confPath = path.join(root, 'softhsm2.conf');
  writeFileSync(confPath, softHsmConfiguration(tokenDir));
  process.env.SOFTHSM2_CONF = confPath;
  process.env.KMS_TEST_SOFTHSM_ROOT = root;
}
