import { chmodSync, lstatSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runCliOn } from '../helpers/cli';
import { kmsClient } from '../helpers/client';
import { makeDataDir } from '../helpers/service';
import { readAdminCredentials, startServiceProcess, type ServiceProcess } from '../helpers/service-process';

/**
 * What the service keeps is its own user's alone (issue 17): every file it creates under the data
 * directory is 0600 and every directory 0700 (the database and its -wal and -shm, the audit chains,
 * the embedded token's directory and files, the admin credential, the lock files), whatever the
 * umask it was started with; and a data directory others may read is reported at start.
 */

/** Every file and directory under `root` (itself included) whose mode is not 0600 / 0700, with that mode. */
function notPrivate(root: string): string[] {
  const found: string[] = [];
  const walk = (entry: string): void => {
    const stat = lstatSync(entry);
    const mode = stat.mode & 0o777;
    const name = path.relative(root, entry) || '.';
    if (stat.isDirectory()) {
      if (mode !== 0o700) found.push(`${name}/ ${mode.toString(8)}`);
      for (const child of readdirSync(entry)) walk(path.join(entry, child));
    } else if (mode !== 0o600) {
      found.push(`${name} ${mode.toString(8)}`);
    }
  };
  walk(root);
  return found;
}

/** How many files and directories there are under `root`, so that an empty walk proves nothing. */
function countEntries(root: string): number {
  return readdirSync(root, { recursive: true }).length;
}

const WARNING = /"msg":"the data directory [^"]* can be read by other local users/;

let parent: string;
let dataDir: string;
let previousUmask: number;
let running: ServiceProcess | undefined;

beforeAll(() => {
  // The umask most shells have: without the service's own care, SQLite's files come out 0644.
  previousUmask = process.umask(0o022);
  parent = makeDataDir();
  // Not there yet: the service makes it.
  dataDir = path.join(parent, 'data');
});

afterEach(async () => {
  await running?.stop();
  running = undefined;
});

afterAll(() => {
  process.umask(previousUmask);
  rmSync(parent, { recursive: true, force: true });
});

it('after a fresh start, some operations and a command-line run, every file is 0600 and every directory 0700; no warning', async () => {
  // A cluster: its primary, the initialiser and two workers each create files.
  running = await startServiceProcess(dataDir, { KMS_WORKERS: '2' });
  const admin = readAdminCredentials(dataDir);
  const kms = kmsClient(running.url, admin.project_id, { 'x-auth-token': admin.token });
  const keyId = (await kms.call('create-key', { key_alias: 'modes' })).body.key_info.key_id as string;
  expect((await kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
  const granted = await kms.call('create-grant', { key_id: keyId, grantee_principal: admin.access_key, operations: ['describe-key'] });
  expect(granted.status).toBe(200);
  expect((await kms.call('revoke-grant', { key_id: keyId, grant_id: granted.body.grant_id })).status).toBe(200);
  // The command-line tool beside it, on the embedded token (not the test run's SoftHSM configuration).
  const cli = await runCliOn({ KMS_DATA_DIR: dataDir, SOFTHSM2_CONF: undefined }, ['credential', 'create', '--project', 'other', '--actions', 'kms:cmk:list']);
  expect(cli.code).toBe(0);

  // The second layer, for what a library or a later change creates without a mode (Linux shows a
  // process's umask in /proc): the primary's, which its workers inherit.
  expect(readFileSync(`/proc/${running.child.pid}/status`, 'utf8')).toMatch(/^Umask:\s+0077$/m);

  // While it runs: the database's -wal and -shm exist.
  const names = readdirSync(dataDir);
  expect(names).toEqual(expect.arrayContaining(['kms.sqlite', 'kms.sqlite-wal', 'kms.sqlite-shm', 'audit-0.log', 'audit-1.log', 'audit-cli.log', 'admin-credentials.json', 'serve.lock', 'hsm.lock', 'softhsm']));
  expect(countEntries(dataDir)).toBeGreaterThan(15);
  expect(notPrivate(dataDir)).toEqual([]);

  expect(await running.stop()).toBe(0);
  const output = running.output();
  running = undefined;
  expect(notPrivate(dataDir)).toEqual([]);
  expect(output).not.toMatch(WARNING);
});

it('a data directory group or others can read gets a warning naming it and the fix, at every start', async () => {
  chmodSync(dataDir, 0o755);
  running = await startServiceProcess(dataDir, { KMS_WORKERS: '1' });
  const line = running.output().split('\n').find((each) => WARNING.test(each));
  expect(line).toBeDefined();
  expect(JSON.parse(line!)).toMatchObject({ level: 40, dataDir, mode: '0755', fix: `chmod 700 ${dataDir}` });
  expect(line).toContain(`chmod 700 ${dataDir}`);
});
