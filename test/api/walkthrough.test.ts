/**
 * The README's walkthrough ("Create a key, a data key, and decrypt it"), run as written with bash
 * and curl against the service, twice on one data directory: a second run must work too.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { useTestService } from '../helpers/service';

const README = readFileSync(path.resolve(__dirname, '..', '..', 'README.md'), 'utf8');

/** The sh block of the walkthrough's section, pointed at `url` instead of 127.0.0.1:8080. */
function walkthrough(url: string): string {
  const section = README.split('\n## Create a key, a data key, and decrypt it\n')[1]!.split('\n## ')[0]!;
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('the walkthrough has no sh block');
  expect(block).toContain('http://127.0.0.1:8080');
  return block.replaceAll('http://127.0.0.1:8080', url);
}

function bash(script: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // -e: a step that fails stops the run, so a failure cannot cascade into the next steps' output.
    execFile('bash', ['-e', '-c', script], { cwd, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const t = useTestService();
let cwd: string;
beforeAll(() => {
  // The walkthrough reads data/admin-credentials.json: the one the service's first start wrote.
  cwd = mkdtempSync(path.join(tmpdir(), 'kms-walkthrough-'));
  symlinkSync(t.dataDir, path.join(cwd, 'data'));
});
afterAll(() => {
  rmSync(cwd, { recursive: true, force: true });
});

it('runs twice, each run creating a key, a data key and getting the same data key back', async () => {
  const script = walkthrough(t.service.url);
  for (const run of [1, 2]) {
    const result = await bash(script, cwd);
    expect({ run, code: result.code, stderr: result.stderr }).toEqual({ run, code: 0, stderr: '' });
    const plain = /"plain_text":"([0-9A-F]+)"/.exec(result.stdout)?.[1];
    expect(plain).toBeDefined();
    expect(result.stdout).toContain(`"data_key":"${plain}"`);
    expect(result.stdout).not.toContain('error_code');
  }
  expect((await t.service.store.keys.list('default', { limit: 100, offset: 0, now: Date.now() })).total).toBe(2);
}, 120_000);

it("the README's Node SDK example (the SDK core's HcClient) creates a key and a data key and gets it back", async () => {
  const section = README.split('\n## Create a key, a data key, and decrypt it\n')[1]!.split('\n## ')[0]!;
  const example = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  expect(example).toBeDefined();
  const script = example!.replaceAll('http://127.0.0.1:8080', t.service.url);
  const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    // NODE_PATH: the example requires the SDK core as an application that installed it would.
    execFile(process.execPath, ['-e', script], { cwd, timeout: 60_000, env: { ...process.env, NODE_PATH: path.resolve(__dirname, '..', '..', 'node_modules') } }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
  expect(result).toMatchObject({ code: 0, stdout: 'the data key came back\n' });
}, 120_000);

it("the README's bring-your-own-key walkthrough runs as written: openssl's key imported, a data key made, the material deleted, the data key refused", async () => {
  const section = README.split('\n## Bring your own key (import)\n')[1]!.split('\n## ')[0]!;
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  expect(block).toContain('http://127.0.0.1:8080');
  const result = await bash(block!.replaceAll('http://127.0.0.1:8080', t.service.url), cwd);
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  const lines = result.stdout.trim().split('\n');
  // The key id, the import's {}, the deletion's {}, and the refused data key.
  expect(lines).toHaveLength(4);
  expect(lines.slice(1, 3)).toEqual(['{}', '{}']);
  expect(JSON.parse(lines[3]!)).toMatchObject({ error_code: 'KMS.1301' });
  const keyId = lines[0]!;
  expect((await t.service.store.keys.get('default', keyId))?.state).toBe('5');
}, 120_000);
