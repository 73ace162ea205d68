/**
 * Another process of the service, for the token lock's tests: it opens the lock on the file named
 * on its command line, prints `ready`, and on each `hold` line from its input asks for the lock
 * (printing `queued` once its ticket is taken, `acquired` when its turn comes) and keeps it until a
 * `release` line. Run with tsx: token-lock-child.ts LOCK_FILE
 */
import { createInterface } from 'node:readline';
import { TokenLock } from '../../src/hsm/token-lock';

const lock = new TokenLock(process.argv[2]!);
const releases: Array<() => void> = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'hold') {
    void lock.hold(
      () =>
        new Promise<void>((resolve) => {
          releases.push(resolve);
          process.stdout.write('acquired\n');
        }),
    ).then(() => process.stdout.write('released\n'), (error: unknown) => process.stdout.write(`failed ${String(error)}\n`));
    process.stdout.write('queued\n');
  } else if (line === 'release') {
    releases.shift()?.();
  }
});
process.stdout.write('ready\n');
