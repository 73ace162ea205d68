import { spawn, type ChildProcess } from 'node:child_process';
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

    const inFlight = Array.from({ length: 20 }, () => kms.call('create-datakey', { key_id: keyId }));
    await Promise.race(inFlight); // the server is busy with them
    const exited = exitOf(first.child);
    first.child.kill('SIGTERM');
    const responses = await Promise.all(inFlight);
    expect(responses.map((response) => response.status)).toEqual(Array(20).fill(200));
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
