/**
 * The access log is written in batches (src/logger.ts): a normal stop (SIGTERM) still writes
 * every line, in the cluster as users run it and in one process.
 */
import { rmSync } from 'node:fs';
import { makeDataDir } from '../helpers/service';
import { exitOf, postAlone, readAdminCredentials, startProcess } from '../helpers/service-process';

const REQUESTS = 40;

describe.each([['2'], ['1']])('KMS_WORKERS=%s: SIGTERM right after the last answer', (workers) => {
  let dataDir: string;
  beforeAll(() => {
    dataDir = makeDataDir();
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("leaves no request's access-log line unwritten", async () => {
    const started = await startProcess(dataDir, { KMS_WORKERS: workers });
    try {
      const admin = readAdminCredentials(dataDir);
      const ids: string[] = [];
      // Several at a time, so that lines pile up in the buffer while a write is under way.
      for (let i = 0; i < REQUESTS; i += 8) {
        const answers = await Promise.all(Array.from({ length: 8 }, () => postAlone(started.url, admin, 'list-keys', {})));
        for (const answer of answers) expect(answer.status).toBe(200);
      }
      started.child.kill('SIGTERM');
      expect(await exitOf(started.child)).toBe(0);
      const lines = started
        .output()
        .split('\n')
        .filter((line) => line.includes('"msg":"request"'))
        .map((line) => JSON.parse(line) as { operation: string; status: number; requestId: string });
      ids.push(...lines.filter((line) => line.operation === 'list-keys' && line.status === 200).map((line) => line.requestId));
      expect(new Set(ids).size).toBe(REQUESTS);
    } finally {
      if (started.child.exitCode === null) started.child.kill('SIGKILL');
    }
  });
});
