import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCliOn } from '../helpers/cli';
import { kmsClient, type KmsClient } from '../helpers/client';
import { startServiceProcess, type ServiceProcess } from '../helpers/service-process';

/**
 * A data directory made by an earlier release (test/fixtures/upgrade/<release>/data-dir, made by
 * make-fixture.ts there: its SoftHSM token, its SQLite database, its audit chains) opens with this
 * code, migrates, and serves: the data keys and small data sealed under it open, its keys keep their
 * states, grants and rotation settings, and its audit chains verify. Every change to the store or to
 * the token's layout keeps this passing; a release that changes them adds its own fixture.
 */

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'upgrade');

interface Expected {
  release: string;
  project_id: string;
  keys: { rotated: string; disabled: string; pending: string };
  grant_id: string;
  data_keys: Array<{ key_id: string; cipher_text: string; plain_text: string; encryption_context?: Record<string, string>; version: number }>;
  small_data: { key_id: string; cipher_text: string; plain_text: string };
}

/** A copy of a fixture's data directory with the modes a restore from a backup gives it (git keeps none). */
function restore(release: string): string {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'kms-upgrade-'));
  cpSync(path.join(FIXTURES, release, 'data-dir'), dataDir, { recursive: true });
  const privatise = (entry: string): void => {
    const isDir = statSync(entry).isDirectory();
    chmodSync(entry, isDir ? 0o700 : 0o600);
    if (isDir) for (const child of readdirSync(entry)) privatise(path.join(entry, child));
  };
  privatise(dataDir);
  return dataDir;
}

const releases = readdirSync(FIXTURES).filter((entry) => statSync(path.join(FIXTURES, entry)).isDirectory());

it('keeps at least one fixture', () => {
  expect(releases.length).toBeGreaterThan(0);
});

describe.each(releases)('a data directory of release %s', (release) => {
  const expected = JSON.parse(readFileSync(path.join(FIXTURES, release, 'expected.json'), 'utf8')) as Expected;
  let dataDir: string;
  let service: ServiceProcess;
  let kms: KmsClient;

  beforeAll(async () => {
    dataDir = restore(release);
    service = await startServiceProcess(dataDir, { KMS_WORKERS: '1' });
    const admin = JSON.parse(readFileSync(path.join(dataDir, 'admin-credentials.json'), 'utf8')) as { token: string };
    kms = kmsClient(service.url, expected.project_id, { 'x-auth-token': admin.token });
  });

  afterAll(async () => {
    if (service) await service.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('opens every data key sealed under it, under each material version', async () => {
    await kms.call('enable-key', { key_id: expected.keys.disabled });
    for (const dataKey of expected.data_keys) {
      const opened = await kms.call('decrypt-datakey', {
        key_id: dataKey.key_id,
        cipher_text: dataKey.cipher_text,
        datakey_cipher_length: '32',
        ...(dataKey.encryption_context ? { encryption_context: dataKey.encryption_context } : {}),
      });
      expect(opened.status).toBe(200);
      expect(opened.body.data_key).toBe(dataKey.plain_text);
    }
    const small = await kms.call('decrypt-data', { cipher_text: expected.small_data.cipher_text });
    expect(small.status).toBe(200);
    expect(small.body.plain_text).toBe(expected.small_data.plain_text);
  });

  it('keeps its keys, their states, grants and rotation settings', async () => {
    const state = async (keyId: string): Promise<string> => (await kms.call('describe-key', { key_id: keyId })).body.key_info.key_state;
    expect(await state(expected.keys.rotated)).toBe('2');
    expect(await state(expected.keys.pending)).toBe('4');
    const grants = await kms.call('list-grants', { key_id: expected.keys.rotated });
    expect(grants.body.grants.map((grant: { grant_id: string }) => grant.grant_id)).toEqual([expected.grant_id]);
    const rotation = await kms.call('get-key-rotation-status', { key_id: expected.keys.rotated });
    expect(rotation.body.key_rotation_enabled).toBe(true);
  });

  it('serves new work on its old keys', async () => {
    const made = await kms.call('create-datakey', { key_id: expected.keys.rotated });
    expect(made.status).toBe(200);
    const opened = await kms.call('decrypt-datakey', { key_id: expected.keys.rotated, cipher_text: made.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.body.data_key).toBe(made.body.plain_text);
    expect((await kms.call('create-key', { key_alias: 'made-after-the-upgrade' })).status).toBe(200);
  });

  it('keeps its audit chains verifiable, extended by this release', async () => {
    expect(await service.stop()).toBe(0);
    const verified = await runCliOn({ KMS_DATA_DIR: dataDir }, ['audit', 'verify']);
    expect(verified.stderr).toBe('');
    expect(verified.code).toBe(0);
    expect(verified.stdout).toMatch(/audit\.log/);
  });
});
