import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { kmsClient } from '../helpers/client';
import { makeDataDir } from '../helpers/service';

/**
 * The service as users run it: `src/main.ts` in its own process on the embedded defaults, with no
 * SoftHSM configuration of its own (so it creates its token under the data directory), stopped by
 * SIGTERM.
 */
interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
}

const ROOT = path.resolve(__dirname, '..', '..');

function startProcess(dataDir: string): Promise<Started> {
  const env: NodeJS.ProcessEnv = { ...process.env, KMS_DATA_DIR: dataDir, PORT: '0', KMS_LOG_LEVEL: 'debug' };
  delete env.SOFTHSM2_CONF;
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(ROOT, 'src', 'main.ts')], { cwd: ROOT, env });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${output}`)), 20_000);
    const onData = (): void => {
      const url = /"url":"(http:[^"]+)"/.exec(output)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve({ child, url, output: () => output });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`service exited with ${code}:\n${output}`)));
  });
}

/** POSTs over a keep-alive agent, so that requests travel on connections the server already accepted. */
function post(agent: Agent, url: string, operation: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const outgoing = request(`${url}/v1.0/project-a/kms/${operation}`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    outgoing.on('error', reject);
    outgoing.end(JSON.stringify(body));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('the service process on its embedded defaults', () => {
  const dataDir = makeDataDir();
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('creates its token and database on first start, finishes requests in flight on SIGTERM, and keeps everything for the next start', async () => {
    const first = await startProcess(dataDir);
    const kms = kmsClient(first.url);
    const keyId = (await kms.call('create-key', { key_alias: 'process' })).body.key_info.key_id;
    const dataKey = (await kms.call('create-datakey', { key_id: keyId })).body;

    // The token and its PIN live under the data directory; the PIN file is the owner's alone.
    expect(readdirSync(path.join(dataDir, 'softhsm', 'tokens'))).toHaveLength(1);
    expect(statSync(path.join(dataDir, 'softhsm', 'user.pin')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dataDir, 'kms.sqlite')).isFile()).toBe(true);

    // Twenty open connections; then twenty requests on them, and SIGTERM while they are in flight.
    // (A connection the server has not accepted yet is refused once it stops listening, as it should be.)
    const agent = new Agent({ keepAlive: true, maxSockets: 20 });
    const send = () => Promise.all(Array.from({ length: 20 }, () => post(agent, first.url, 'create-datakey', { key_id: keyId })));
    expect(await send()).toEqual(Array(20).fill(200));
    const inFlight = send();
    const exited = exitOf(first.child);
    first.child.kill('SIGTERM');
    expect(await inFlight).toEqual(Array(20).fill(200));
    agent.destroy();
    expect(await exited).toBe(0);
    expect(first.output()).toContain('KMS stopped');

    const second = await startProcess(dataDir);
    const opened = await kmsClient(second.url).call('decrypt-datakey', {
      key_id: keyId,
      cipher_text: dataKey.cipher_text,
      datakey_cipher_length: '32',
    });
    expect(opened.body.data_key).toBe(dataKey.plain_text);
    const exitedAgain = exitOf(second.child);
    second.child.kill('SIGINT');
    expect(await exitedAgain).toBe(0);

    // Neither the PIN nor a data key ever reached the log.
    const pin = require('node:fs').readFileSync(path.join(dataDir, 'softhsm', 'user.pin'), 'utf8').trim();
    const logs = first.output() + second.output();
    expect(logs).not.toContain(pin);
    expect(logs).not.toContain(dataKey.plain_text);
  });

  it('refuses to start, with a clear message, when the configured module cannot be loaded', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KMS_DATA_DIR: dataDir,
      PORT: '0',
      KMS_PKCS11_MODULE: '/nonexistent/libpkcs11.so',
      KMS_PKCS11_PIN: 'do-not-print-this-pin',
    };
    const child = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(ROOT, 'src', 'main.ts')], { cwd: ROOT, env });
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    expect(await exitOf(child)).toBe(1);
    expect(output).toContain('cannot load PKCS#11 module /nonexistent/libpkcs11.so');
    expect(output).not.toContain('do-not-print-this-pin');
  });
});
