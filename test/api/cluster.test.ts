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
  });

  it('creates one token when several processes start at once on a fresh data directory', async () => {
    const dataDir = freshDir();
    // The service and three command-line tools race for the token that does not exist yet.
    const tools = Array.from({ length: 3 }, () => spawnScript('cli.ts', processEnv(dataDir), ['credential', 'list']));
    const service = await startProcess(dataDir, WORKERS);
    running.push(service);
    const codes = await Promise.all(tools.map((tool) => exitOf(tool.child)));
    expect({ codes, output: codes.some((code) => code !== 0) ? tools.map((tool) => tool.output()).join('\n') : '' }).toEqual({
      codes: [0, 0, 0],
      output: '',
    });
    expect(tokensIn(dataDir)).toHaveLength(1);
    const admin = readAdminCredentials(dataDir);
    expect((await postAlone(service.url, admin, 'create-key', { key_alias: 'after-race' })).status).toBe(200);
    expect(await stop(service)).toBe(0);
  });

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
  });

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
  });
});

describe('start-up errors', () => {
  /** One line on standard error, no stack trace. */
  const expectOneLine = (output: string, message: string): void => {
    const problems = output.split('\n').filter((line) => line.startsWith('kms: '));
    expect(problems).toEqual([expect.stringContaining(message)]);
    expect(output).not.toMatch(/^\s+at /m);
  };

  it('says in one line that the port is in use', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    const dataDir = makeDataDir();
    try {
      const port = (taken.address() as AddressInfo).port;
      const { code, output } = await runUntilExit(processEnv(dataDir, { PORT: String(port), KMS_WORKERS: '1', KMS_LOG_LEVEL: 'info' }));
      expect(code).toBe(1);
      expectOneLine(output, `cannot listen on 127.0.0.1:${port}: EADDRINUSE`);
    } finally {
      taken.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

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
