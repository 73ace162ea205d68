import { readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { makeDataDir } from '../helpers/service';
import {
  exitOf,
  postAlone,
  processEnv,
  readAdminCredentials,
  runUntilExit,
  spawnScript,
  startProcess,
  waitForOutput,
  workersThatServed,
  type Started,
} from '../helpers/service-process';

/**
 * The service as users start it, a primary and two workers sharing one data directory and one
 * embedded SoftHSM token: what one worker does, the other sees; the token is made once; the
 * cluster stops cleanly after a worker was replaced; start-up errors are one line.
 */

const WORKERS = { KMS_WORKERS: '2' };

/** The SoftHSM tokens under a data directory (one folder each). */
function tokensIn(dataDir: string): string[] {
  return readdirSync(path.join(dataDir, 'softhsm', 'tokens'));
}

async function stop(started: Started): Promise<number | null> {
  const exited = exitOf(started.child);
  started.child.kill('SIGTERM');
  return exited;
}

describe('a cluster of two workers on one data directory', () => {
  const dirs: string[] = [];
  const running: Started[] = [];
  const freshDir = (): string => {
    const dir = makeDataDir();
    dirs.push(dir);
    return dir;
  };
  afterAll(() => {
    for (const started of running) if (started.child.exitCode === null) started.child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('uses a key created through either worker through both, at once', async () => {
    const dataDir = freshDir();
    const started = await startProcess(dataDir, WORKERS);
    running.push(started);
    const admin = readAdminCredentials(dataDir);
    const call = (operation: string, body: unknown) => postAlone(started.url, admin, operation, body);

    // Keys made at the same time through both workers (each request on a connection of its own),
    // so that both processes write to the token.
    const created = await Promise.all(Array.from({ length: 12 }, (_, i) => call('create-key', { key_alias: `visible-${i}` })));
    expect(created.map((reply) => reply.status)).toEqual(Array(12).fill(200));
    const ids = created.map((reply) => reply.body.key_info!.key_id);

    // Each key, six times on new connections: both workers serve it.
    for (const id of ids) {
      const dataKeys = await Promise.all(Array.from({ length: 6 }, () => call('create-datakey', { key_id: id })));
      expect(dataKeys.map((reply) => [reply.status, reply.body.error_code])).toEqual(Array(6).fill([200, undefined]));
      const opened = await Promise.all(
        dataKeys.map((reply) => call('decrypt-datakey', { key_id: id, cipher_text: reply.body.cipher_text, datakey_cipher_length: '32' })),
      );
      expect(opened.map((reply) => reply.body.data_key)).toEqual(dataKeys.map((reply) => reply.body.plain_text));
    }
    expect(workersThatServed(started)).toEqual(new Set([0, 1]));
    expect(await stop(started)).toBe(0);
  }, 120_000);

  it('creates one token when several processes open a fresh data directory at the same moment', async () => {
    const dataDir = freshDir();
    // Five processes that all find no token yet, at one moment (each waits for the same clock time,
    // however long it took to start); then the service and a command-line tool on the result.
    const at = String(Date.now() + 6000);
    const openers = Array.from({ length: 5 }, () => spawnScript(path.join(__dirname, '..', 'helpers', 'open-at.ts'), processEnv(dataDir), [at]));
    const codes = await Promise.all(openers.map((opener) => exitOf(opener.child)));
    expect({ codes, output: openers.map((opener) => opener.output()).join('') }).toEqual({ codes: [0, 0, 0, 0, 0], output: '' });
    expect(tokensIn(dataDir)).toHaveLength(1);
    const tool = spawnScript('cli.ts', processEnv(dataDir), ['credential', 'list']);
    const service = await startProcess(dataDir, WORKERS);
    running.push(service);
    expect(await exitOf(tool.child)).toBe(0);
    expect(tokensIn(dataDir)).toHaveLength(1);
    const admin = readAdminCredentials(dataDir);
    expect((await postAlone(service.url, admin, 'create-key', { key_alias: 'after-race' })).status).toBe(200);
    expect(await stop(service)).toBe(0);
  }, 120_000);

  it('starts on fresh data directories again and again, one token each', async () => {
    for (let round = 0; round < 3; round++) {
      const dataDir = freshDir();
      const started = await startProcess(dataDir, WORKERS);
      running.push(started);
      const admin = readAdminCredentials(dataDir);
      const replies = await Promise.all(Array.from({ length: 4 }, (_, i) => postAlone(started.url, admin, 'create-key', { key_alias: `round-${i}` })));
      expect(replies.map((reply) => reply.status)).toEqual([200, 200, 200, 200]);
      expect(await stop(started)).toBe(0);
      expect(tokensIn(dataDir)).toHaveLength(1);
    }
  }, 180_000);

  it('stops cleanly (exit 0) after a worker died and was replaced', async () => {
    const started = await startProcess(freshDir(), WORKERS);
    running.push(started);
    await waitForOutput(started, /"msg":"worker listening"/, 2);
    const workers = [...started.output().matchAll(/"pid":(\d+).*"msg":"worker listening"/g)].map((match) => Number(match[1]));
    expect(workers).toHaveLength(2);
    process.kill(workers[0]!, 'SIGKILL');
    await waitForOutput(started, /"msg":"worker died; starting another"/);
    await waitForOutput(started, /"msg":"worker listening"/, 3);
    expect(await stop(started)).toBe(0);
    expect(started.output()).toContain('"msg":"KMS stopped"');
  }, 120_000);
});

describe('start-up errors', () => {
  /** One line on standard error, no stack trace. */
  const expectOneLine = (output: string, message: string): void => {
    const problems = output.split('\n').filter((line) => line.startsWith('kms: '));
    expect(problems).toEqual([expect.stringContaining(message)]);
    expect(output).not.toMatch(/^\s+at /m);
  };

  it.each(['1', '2'])('says in one line that the port is in use (KMS_WORKERS=%s)', async (workers) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    const dataDir = makeDataDir();
    try {
      const port = (taken.address() as AddressInfo).port;
      const { code, output } = await runUntilExit(processEnv(dataDir, { PORT: String(port), KMS_WORKERS: workers, KMS_LOG_LEVEL: 'info' }));
      expect(code).toBe(1);
      expectOneLine(output, `cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    } finally {
      taken.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('says in one line that the data directory is already served', async () => {
    const dataDir = makeDataDir();
    const running = await startProcess(dataDir, { KMS_WORKERS: '1' });
    try {
      const { code, output } = await runUntilExit(processEnv(dataDir, { KMS_WORKERS: '2', KMS_LOG_LEVEL: 'info' }));
      expect(code).toBe(1);
      expectOneLine(output, `the data directory ${dataDir} is already served by another process`);
      // It touched nothing: the running service's chain has no second writer, and it still serves.
      expect(await stop(running)).toBe(0);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('says in one line that the log level is unknown', async () => {
    const dataDir = makeDataDir();
    try {
      const { code, output } = await runUntilExit(processEnv(dataDir, { KMS_LOG_LEVEL: 'loud' }));
      expect(code).toBe(1);
      expectOneLine(output, 'KMS_LOG_LEVEL must be one of');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
