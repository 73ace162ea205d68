/** A stream abandoned half-way fails its pipeline, and nothing escapes as an uncaught exception. */
import { spawn } from 'node:child_process';
import path from 'node:path';

test('readers that stop and writers that fail end the pipeline, with no uncaught exception', async () => {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(__dirname, 'helpers', 'abort-child.ts')], {
    env: { PATH: process.env.PATH },
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
  expect(status).toBe(0);
  const { results, uncaught } = JSON.parse(stdout) as { results: Record<string, string>; uncaught: string[] };
  expect(uncaught).toEqual([]);
  for (const outcome of Object.values(results)) expect(outcome).not.toBe('completed');
});
