/** kms-envelope encrypt|decrypt, as a process, over files and pipes, against a real service. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startClientTestService, type ClientTestService } from './helpers/kms';

const CLI = path.join(__dirname, '..', 'src', 'cli.ts');
const TSX = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');

let kms: ClientTestService;
let dir: string;
beforeAll(async () => {
  kms = await startClientTestService();
  dir = mkdtempSync(path.join(tmpdir(), 'kms-envelope-cli-'));
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await kms?.stop();
});

/** Runs the CLI as its own process; asynchronously, since the service answers from this process's event loop. */
function run(args: string[], input?: Buffer): Promise<{ status: number | null; stdout: Buffer; stderr: string }> {
  const child = spawn(TSX, [CLI, ...args], {
    env: {
      PATH: process.env.PATH,
      KMS_ENDPOINTS: kms.service.service.url,
      KMS_PROJECT_ID: kms.projectId,
      KMS_KEY_ID: kms.keyId,
      KMS_ACCESS_KEY: kms.ak,
      KMS_SECRET_KEY: kms.sk,
    },
  });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
  child.stdin.end(input ?? Buffer.alloc(0));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString() }));
  });
}

test('files: encrypt then decrypt, with a context', async () => {
  const plaintext = randomBytes(100_000);
  writeFileSync(path.join(dir, 'plain'), plaintext);
  const encrypted = await run(['encrypt', '--in', path.join(dir, 'plain'), '--out', path.join(dir, 'sealed'), '--context', 'app=cli']);
  expect(encrypted).toMatchObject({ status: 0, stderr: '' });
  const decrypted = await run(['decrypt', '--in', path.join(dir, 'sealed'), '--out', path.join(dir, 'opened'), '--context', 'app=cli']);
  expect(decrypted).toMatchObject({ status: 0, stderr: '' });
  expect(readFileSync(path.join(dir, 'opened')).equals(plaintext)).toBe(true);
});

test('pipes: stdin to stdout; a wrong expected context fails with exit 1 and leaves no output file', async () => {
  const sealed = await run(['encrypt', '--context', 'app=pipe'], Buffer.from('through a pipe'));
  expect(sealed.status).toBe(0);
  const opened = await run(['decrypt'], sealed.stdout);
  expect(opened.stdout.toString()).toBe('through a pipe');
  writeFileSync(path.join(dir, 'sealed-pipe'), sealed.stdout);
  const refused = await run(['decrypt', '--in', path.join(dir, 'sealed-pipe'), '--out', path.join(dir, 'nope'), '--context', 'app=other']);
  expect(refused.status).toBe(1);
  expect(refused.stderr).toMatch(/EncryptionContextMismatchError/);
  expect(existsSync(path.join(dir, 'nope'))).toBe(false);
});

test('usage errors exit 2', async () => {
  expect((await run(['shred'])).status).toBe(2);
  expect((await run(['encrypt', '--context', 'novalue'])).status).toBe(2);
});

test('a decrypted --out file is created 0600 whatever the umask, and replaces an existing one only on success', async () => {
  writeFileSync(path.join(dir, 'plain-mode'), 'private');
  expect((await run(['encrypt', '--in', path.join(dir, 'plain-mode'), '--out', path.join(dir, 'sealed-mode')])).status).toBe(0);
  const out = path.join(dir, 'opened-mode');
  expect((await run(['decrypt', '--in', path.join(dir, 'sealed-mode'), '--out', out])).status).toBe(0);
  expect(statSync(out).mode & 0o777).toBe(0o600);
  expect(readFileSync(out, 'utf8')).toBe('private');
  // A failed decryption leaves the existing file as it was (nothing half-written, nothing removed).
  writeFileSync(path.join(dir, 'sealed-cut'), readFileSync(path.join(dir, 'sealed-mode')).subarray(0, 200));
  expect((await run(['decrypt', '--in', path.join(dir, 'sealed-cut'), '--out', out])).status).toBe(1);
  expect(readFileSync(out, 'utf8')).toBe('private');
  expect(readdirSync(dir).filter((name) => name.endsWith('.tmp'))).toEqual([]);
});

test('--in and --out naming one file are refused (exit 2) and the file is left intact', async () => {
  writeFileSync(path.join(dir, 'same'), 'do not truncate');
  const refused = await run(['encrypt', '--in', path.join(dir, 'same'), '--out', path.join(dir, '.', 'same')]);
  expect(refused.status).toBe(2);
  expect(refused.stderr).toMatch(/same file/);
  expect(readFileSync(path.join(dir, 'same'), 'utf8')).toBe('do not truncate');
});
