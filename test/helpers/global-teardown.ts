import { rmSync } from 'node:fs';

/** Removes this run's SoftHSM tokens. */
export default function globalTeardown(): void {
  const root = process.env.KMS_TEST_SOFTHSM_ROOT;
  if (root) rmSync(root, { recursive: true, force: true });
}
