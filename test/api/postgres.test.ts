import { existsSync } from 'node:fs';
import { Client } from 'pg';
import { eventually } from '../helpers/eventually';
import { runCliOn } from '../helpers/cli';
import { createKeyId, expectKmsError, fetchResponse, kmsClient } from '../helpers/client';
import { usePostgresCluster } from '../helpers/postgres-cluster';
import { useTestService } from '../helpers/service';

/**
 * The API on PostgreSQL (KMS_DATABASE_URL): the real service on SoftHSM and a throwaway cluster,
 * through a representative subset of the API rather than every API file again (CI time): a key's
 * life (create, describe, disable, enable, schedule deletion), data keys (create, decrypt),
 * grants (a grantee's use, its revocation), rotation (on demand, old data keys still open),
 * credentials kept in the shared database, what another process (the CLI) writes honoured at once,
 * a start beside another instance's key creation, and an outage of PostgreSQL (503 KMS.0104,
 * /readyz, then service again without a restart). The rest of the API is the same code over the store seam,
 * whose two implementations the store contract suite holds to one behaviour (test/store/).
 */

const cluster = usePostgresCluster();

let databaseUrl: string;

async function sql<R>(text: string, values: unknown[] = []): Promise<R[]> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as R[];
  } finally {
    await client.end();
  }
}

async function createKey(alias: string): Promise<string> {
  return createKeyId(kms, alias);
}

async function dataKey(keyId: string, client = kms): Promise<{ plain: string; cipher: string }> {
  const created = await client.call('create-datakey', { key_id: keyId });
  expect(created.status).toBe(200);
  return { plain: created.body.plain_text as string, cipher: created.body.cipher_text as string };
}

async function opens(keyId: string, cipher: string, client = kms): Promise<string> {
  const opened = await client.call('decrypt-datakey', { key_id: keyId, cipher_text: cipher, datakey_cipher_length: '32' });
  expect(opened.status).toBe(200);
  return opened.body.data_key as string;
}

const t = useTestService(async () => {
  databaseUrl = await cluster().freshDatabase();
  return { env: { KMS_DATABASE_URL: databaseUrl } };
}, 60_000);
const kms = t.client('project-a');

it('keeps the metadata in PostgreSQL, not in the data directory', async () => {
  const keyId = await createKey('in-postgres');
  expect(await sql('SELECT key_id, project_id, key_alias FROM keys WHERE key_id = $1', [keyId])).toEqual([
    { key_id: keyId, project_id: 'project-a', key_alias: 'in-postgres' },
  ]);
  expect(existsSync(t.config.databasePath)).toBe(false);
  expect((await kms.call('describe-key', { key_id: keyId })).body.key_info).toMatchObject({ key_id: keyId, key_alias: 'in-postgres', key_state: '2' });
});

it('creates data keys and decrypts them', async () => {
  const keyId = await createKey('datakeys');
  const { plain, cipher } = await dataKey(keyId);
  expect(plain).toMatch(/^[0-9A-F]{64}$/);
  expect(await opens(keyId, cipher)).toBe(plain);
});

it('refuses a disabled key at once, and serves it again once enabled', async () => {
  const keyId = await createKey('disable');
  const { plain, cipher } = await dataKey(keyId);
  expect((await kms.call('disable-key', { key_id: keyId })).status).toBe(200);
  expectKmsError(await kms.call('create-datakey', { key_id: keyId }), 400, 'KMS.0209');
  expectKmsError(await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: cipher, datakey_cipher_length: '32' }), 400, 'KMS.0209');
  expect((await kms.call('enable-key', { key_id: keyId })).status).toBe(200);
  expect(await opens(keyId, cipher)).toBe(plain);
});

it('schedules a deletion: the key is refused while pending, and counted by state', async () => {
  const keyId = await createKey('deletion');
  expect((await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
  expectKmsError(await kms.call('create-datakey', { key_id: keyId }), 400, 'KMS.0210');
  expect(await sql('SELECT key_state FROM keys WHERE key_id = $1', [keyId])).toEqual([{ key_state: '4' }]);
});

it("honours a grant for its grantee, of another project, until it is revoked", async () => {
  const keyId = await createKey('granted');
  const grantee = await t.service.credentials.createToken({ projectId: 'project-b', actions: ['kms:*'] });
  // The grantee calls on the key's project URL, with its own credential.
  const asGrantee = kmsClient(() => t.service.url, 'project-a', { 'x-auth-token': grantee.token });
  expectKmsError(await asGrantee.call('create-datakey', { key_id: keyId }), 403, 'KMS.0307');
  const granted = await kms.call('create-grant', { key_id: keyId, grantee_principal: grantee.principal_id, operations: ['create-datakey', 'decrypt-datakey'] });
  expect(granted.status).toBe(200);
  const grantId = granted.body.grant_id as string;
  expect(await sql('SELECT key_id FROM grants WHERE grant_id = $1', [grantId])).toEqual([{ key_id: keyId }]);
  const { plain, cipher } = await dataKey(keyId, asGrantee);
  expect(await opens(keyId, cipher)).toBe(plain);
  expect((await kms.call('revoke-grant', { key_id: keyId, grant_id: grantId })).status).toBe(200);
  expectKmsError(await asGrantee.call('create-datakey', { key_id: keyId }), 403, 'KMS.0307');
});

it('rotates on demand: new data keys under the new version, old ones still open', async () => {
  const keyId = await createKey('rotated');
  const before = await dataKey(keyId);
  expect((await kms.call('rotate-on-demand', { key_id: keyId })).status).toBe(200);
  const status = await kms.call('get-key-rotation-status', { key_id: keyId });
  expect(status.body.number_of_rotations).toBe(1);
  expect(await sql('SELECT material_version FROM keys WHERE key_id = $1', [keyId])).toEqual([{ material_version: 1 }]);
  const after = await dataKey(keyId);
  expect(await opens(keyId, before.cipher)).toBe(before.plain);
  expect(await opens(keyId, after.cipher)).toBe(after.plain);
});

it('tags a key, holds it to 10 tags, finds it by tag and alias, and keeps the tags in PostgreSQL', async () => {
  const keyId = await createKey('pg-tagged');
  const tag = (key: string, value: string) => kms.call(`${keyId}/tags`, { tag: { key, value } });
  expect((await kms.call(`${keyId}/tags/action`, { action: 'create', tags: Array.from({ length: 9 }, (_, i) => ({ key: `k${i}`, value: 'v' })) })).status).toBe(204);
  // Two at once for the tenth place: one gets it, the other is KMS.0409.
  const raced = await Promise.all([tag('環境', '生産'), tag('team', 'billing')]);
  expect(raced.map((response) => response.status).sort()).toEqual([204, 400]);
  expectKmsError(raced.find((response) => response.status === 400)!, 400, 'KMS.0409');
  expect((await kms.raw(`${keyId}/tags`, { method: 'GET' })).body.existTagsNum).toBe(10);
  const found = await kms.call('resource_instances/action', { action: 'filter', tags: [{ key: 'k0', values: ['v'] }], matches: [{ key: 'resource_name', value: 'PG-TAG' }] });
  expect(found.body).toMatchObject({ total_count: 1, resources: [{ resource_id: keyId, resource_name: 'pg-tagged' }] });
  expect(await sql<{ n: number }>('SELECT count(*)::int AS n FROM key_tags WHERE key_id = $1', [keyId])).toEqual([{ n: 10 }]);
});

it('keeps credentials in the shared database: their sealed secrets and token hashes, never the secrets', async () => {
  const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:*'] });
  const rows = await sql<{ kind: string; sealed_secret: Buffer | null }>('SELECT kind, sealed_secret FROM credentials WHERE id = $1', [issued.access_key]);
  expect(rows).toHaveLength(1);
  expect(rows[0]!.kind).toBe('aksk');
  expect(rows[0]!.sealed_secret).toBeInstanceOf(Buffer);
  expect(rows[0]!.sealed_secret!.includes(Buffer.from(issued.secret_key))).toBe(false);
});

it("honours at once what another process wrote to the shared database: the CLI's credential, and its disabling of a key", async () => {
  // The command-line tool is a process of its own, on the same token and database, as another instance would be.
  const env = { KMS_DATA_DIR: t.dataDir, ...t.moduleEnv, KMS_DATABASE_URL: databaseUrl };
  const issued = await runCliOn(env, ['credential', 'create', '--project', 'project-c', '--actions', 'kms:*', '--token', '--json']);
  expect(issued).toMatchObject({ code: 0 });
  const asCli = kmsClient(() => t.service.url, 'project-c', { 'x-auth-token': JSON.parse(issued.stdout).token as string });
  const created = await asCli.call('create-key', { key_alias: 'from-a-cli-credential' });
  expect(created.status).toBe(200);
  const keyId = created.body.key_info.key_id as string;
  await dataKey(keyId, asCli);

  const disabled = await runCliOn(env, ['key', 'disable', '--project', 'project-c', keyId, '--json']);
  expect(disabled).toMatchObject({ code: 0 });
  // Announced by NOTIFY and dropped from this process's key cache: refused from then on.
  await eventually('the disabled key to be refused', () => asCli.call('create-datakey', { key_id: keyId }), { until: (response) => response.status === 400 });
  expectKmsError(await asCli.call('create-datakey', { key_id: keyId }), 400, 'KMS.0209');
  // Two runs of the tool, each compiling it (tsx) and opening the HSM: slow on a loaded machine.
}, 120_000);

it("leaves another instance's key creation under way alone when it starts, since the database is shared", async () => {
  // Another instance between the key's record and its HSM object: a record not yet provisioned.
  const keyId = 'c0ffee00-0000-4000-8000-000000000001';
  await sql(
    `INSERT INTO keys (key_id, project_id, key_alias, key_spec, key_usage, origin, key_state, creation_date, material_version, provisioned)
     VALUES ($1, 'project-a', 'being-created-elsewhere', 'AES_256', 'ENCRYPT_DECRYPT', 'kms', '2', $2, 0, false)`,
    [keyId, t.clock.now],
  );
  await sql('INSERT INTO key_materials (key_id, version, created_at) VALUES ($1, 0, $2)', [keyId, t.clock.now]);
  // This instance starts again (as a new instance would) and reconciles at start.
  await t.restart();
  expect(await sql('SELECT provisioned FROM keys WHERE key_id = $1', [keyId])).toEqual([{ provisioned: false }]);
  // Past the grace a creation takes, it is an interrupted one: the periodic pass rolls it back.
  t.clock.now += 120_000;
  await t.restart();
  expect(await sql('SELECT key_id FROM keys WHERE key_id = $1', [keyId])).toEqual([]);
});

it('answers 503 KMS.0104 while PostgreSQL is down, /readyz says so, and serves again once it is back, without a restart', async () => {
  const keyId = await createKey('outage');
  const { plain, cipher } = await dataKey(keyId);
  cluster().pause();
  try {
    expectKmsError(await kms.call('create-key', { key_alias: 'during-the-outage' }), 503, 'KMS.0104');
    const ready = await fetchResponse(`${t.service.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.database).toBe('failed');
  } finally {
    cluster().resume();
  }
  // The pool and the change feed reconnect by themselves.
  await eventually('/readyz to answer 200 again', () => fetchResponse(`${t.service.url}/readyz`), { until: (response) => response.status === 200, limitMs: 20_000 });
  expect(await opens(keyId, cipher)).toBe(plain);
  const afterwards = await createKey('after-the-outage');
  expect(await opens(afterwards, (await dataKey(afterwards)).cipher)).toMatch(/^[0-9A-F]{64}$/);
  // The change feed lost its connection and said so (its caches were flushed on the reconnect).
  expect(t.logs.text).toContain('the change feed lost its connection; reconnecting');
});
