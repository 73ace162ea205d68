/**
 * A 2 GiB stream through encryptStream → decryptStream, under a memory ceiling: the resident set of
 * the process doing it (a child process, helpers/stream-2gb-child.ts) may not grow by 64 MiB over
 * its size after a 64 MiB warm-up stream (see there why the baseline is taken then). Its own file, with a generous limit: on a loaded 2-vCPU machine it
 * takes one to two minutes.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { startClientTestService, type ClientTestService } from './helpers/kms';

const TOTAL = 2 * 1024 ** 3;
const CEILING = 64 * 1024 * 1024;
const COLD_CEILING = 96 * 1024 * 1024;

let kms: ClientTestService;
beforeAll(async () => {
  kms = await startClientTestService();
});
afterAll(async () => {
  await kms?.stop();
});

test('2 GiB round-trips with RSS growth under 64 MiB over a warmed-up process (96 MiB from cold)', async () => {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--require', require.resolve('tsx/cjs'), path.join(__dirname, 'helpers', 'stream-2gb-child.ts')],
    {
      env: {
        PATH: process.env.PATH,
        STREAM_BYTES: String(TOTAL),
        KMS_ENDPOINT: kms.service.service.url,
        KMS_PROJECT_ID: kms.projectId,
        KMS_KEY_ID: kms.keyId,
        KMS_ACCESS_KEY: kms.ak,
        KMS_SECRET_KEY: kms.sk,
      },
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
  expect({ status, stderr }).toEqual({ status: 0, stderr: '' });
  const result = JSON.parse(stdout) as { received: number; mismatches: number; coldBaseline: number; warmUpPeak: number; baseline: number; peak: number };
  const mib = (bytes: number): string => `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  process.stdout.write(
    `2 GiB stream: RSS growth ${mib(result.peak - result.baseline)} over the warmed-up baseline; ` +
      `${mib(result.peak - result.coldBaseline)} over the cold one (the 64 MiB warm-up alone: ${mib(result.warmUpPeak - result.coldBaseline)})\n`,
  );
  expect(result).toMatchObject({ received: TOTAL, mismatches: 0 });
  // What grows with the data: nothing may (a leak of even 3 % of 2 GiB would pass the ceiling).
  expect(result.peak - result.baseline).toBeLessThan(CEILING);
  // From cold, V8's heap and young generation first grow to their working size (60-64 MiB measured
  // on AMD EPYC): capped too, with room for that.
  expect(result.peak - result.coldBaseline).toBeLessThan(COLD_CEILING);
}, 900_000);
