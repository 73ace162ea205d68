import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { verifyAuditLog } from '../../src/audit/audit-log';
import type { KeyRecord } from '../../src/domain/keys';
import type { MetadataStore } from '../../src/domain/repositories';
import { COPIED_TABLES, TABLE_COPIES } from '../../src/store/copy-to-postgres';
import { openPostgresStore } from '../../src/store/postgres/postgres-store';
import { openDatabase } from '../../src/store/sqlite/database';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { runCliOn } from '../helpers/cli';
import { usePostgresCluster } from '../helpers/postgres-cluster';

/**
 * `kms store copy --to postgres://…` (src/store/copy-to-postgres.ts), run as the operator runs it:
 * an embedded store with a bit of everything is copied into an empty PostgreSQL database, which
 * then reads back, through the store seam, exactly as the embedded store does; a second copy into
 * the now non-empty database is refused and changes nothing.
 */

jest.setTimeout(120_000);

const cluster = usePostgresCluster();
const NOW = 1_800_000_000_000;
const DAY = 86_400_000;
let dataDir: string;

beforeEach(() => {
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'kms-store-copy-'));
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

function key(projectId: string, alias: string, overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    keyId: `${alias}-${randomBytes(4).toString('hex')}`,
    projectId,
    alias,
    description: `the ${alias} key`,
    keySpec: 'AES_256',
    keyUsage: 'ENCRYPT_DECRYPT',
    origin: 'kms',
    state: '2',
    creationDate: NOW,
    scheduledDeletionDate: null,
    materialVersion: 0,
    ...overrides,
  };
}

/** An embedded store with keys (one still in creation, one pending deletion), versions and seals, rotation, nested grants, aliases, credentials, a checkpoint. */
async function fillEmbeddedStore(store: MetadataStore): Promise<KeyRecord[]> {
  const keys = [key('p1', 'orders'), key('p1', 'invoices'), key('p2', 'logs', { creationDate: NOW + 1 }), key('p1', 'leaving', { state: '4', scheduledDeletionDate: NOW + 7 * DAY })];
  for (const record of keys) {
    await store.keys.insertProvisioning(record, 100);
    await store.keys.markProvisioned(record.keyId);
  }
  await store.keys.insertProvisioning(key('p1', 'in-creation'), 100);
  const [orders, invoices] = keys as [KeyRecord, KeyRecord];
  await store.rotations.setSettings(orders.keyId, { enabled: true, intervalDays: 90, nextRotationAt: NOW + 90 * DAY });
  const version = (await store.rotations.claim(orders.keyId, 'on-demand', NOW + 10, 1000))!;
  await store.rotations.finish(orders.keyId, version, NOW + 10, NOW + 20);
  await store.rotations.addSeals([
    { keyId: orders.keyId, version: 0, count: 41 },
    { keyId: orders.keyId, version, count: 2 },
  ]);
  // An interrupted rotation: a claimed version not yet current.
  await store.rotations.claim(invoices.keyId, 'on-demand', NOW + 30, 1000);
  const grant = (grantId: string, parentGrantId: string | null, creationDate: number) => ({
    grantId,
    keyId: orders.keyId,
    name: grantId,
    granteePrincipal: `user-${grantId}`,
    granteeType: 'user' as const,
    retiringPrincipal: 'retirer',
    issuingPrincipal: 'admin',
    operations: ['create-datakey', 'decrypt-datakey'],
    creationDate,
    parentGrantId,
  });
  await store.grants.insert(grant('a'.repeat(64), null, NOW), 10);
  await store.grants.insert(grant('b'.repeat(64), 'a'.repeat(64), NOW), 10);
  await store.grants.insert(grant('c'.repeat(64), 'b'.repeat(64), NOW - 1), 10);
  await store.aliases.insert({ projectId: 'p1', alias: 'alias/orders', keyId: orders.keyId, createTime: NOW, updateTime: NOW }, 10);
  await store.aliases.insert({ projectId: 'p1', alias: 'alias/orders-b', keyId: orders.keyId, createTime: NOW + 1, updateTime: NOW + 2 }, 10);
  await store.credentials.insert({ id: 'AKCOPIED0000000000001', kind: 'aksk', projectId: 'p1', actions: ['kms:*'], description: 'copied', sealedSecret: randomBytes(60), tokenHash: null, createdAt: NOW, expiresAt: null });
  await store.credentials.insert({ id: 'tok-copied', kind: 'token', projectId: 'p2', actions: ['kms:cmk:list', 'kms:dek:*'], description: '', sealedSecret: null, tokenHash: 'ab'.repeat(32), createdAt: NOW + 1, expiresAt: NOW + DAY });
  await store.credentials.setEnabled('tok-copied', false);
  await store.auditCheckpoints.record({ instance: 'kms-a/audit.log', records: 12, head: 'cd'.repeat(32), at: NOW });
  await store.tags.put(orders.keyId, [{ key: 'team', value: 'billing' }, { key: '环境', value: '生产' }, { key: 'empty', value: '' }], 10);
  await store.tags.put(invoices.keyId, [{ key: 'team', value: 'finance' }], 10);
  await store.imports.put({ keyId: invoices.keyId, wrappingExpiresAt: NOW + DAY, fingerprint: randomBytes(16), imported: true, materialExpiresAt: NOW + 2 * DAY });
  return keys;
}

/** What the services would read from a store, through the seam. */
async function everything(store: MetadataStore, keys: readonly KeyRecord[]): Promise<unknown> {
  const page = { offset: 0, limit: 100, now: NOW };
  return {
    p1: await store.keys.list('p1', page),
    p2: await store.keys.list('p2', page),
    unprovisioned: await store.keys.unprovisioned(NOW),
    counted: await store.keys.countKeys('p1', NOW),
    // In no order the seam promises.
    materials: (await store.keys.allMaterials()).sort((x, y) => x.keyId.localeCompare(y.keyId) || x.version - y.version),
    perKey: await Promise.all(
      keys.map(async (record) => ({
        versions: await store.keys.materialVersions(record.keyId),
        usage: await store.rotations.materials(record.keyId),
        rotation: await store.rotations.state(record.keyId),
        grants: await store.grants.forKey(record.keyId, page),
        tags: await store.tags.forKey(record.keyId),
        import: await store.imports.get(record.keyId),
      })),
    ),
    projectTags: await store.tags.projectTags('p1', NOW),
    claims: await store.rotations.claimedBefore(NOW + DAY),
    aliases: await store.aliases.list('p1', { limit: 100, now: NOW }),
    credentials: await store.credentials.list(),
    checkpoints: await store.auditCheckpoints.all(),
  };
}

it('copies the embedded store into an empty PostgreSQL database, which then reads as it did; refuses a target that is not empty', async () => {
  const embedded = SqliteStore.open(path.join(dataDir, 'kms.sqlite'));
  let keys: KeyRecord[];
  let expected: unknown;
  try {
    keys = await fillEmbeddedStore(embedded);
    expected = await everything(embedded, keys);
  } finally {
    await embedded.close();
  }
  const url = await cluster().freshDatabase();

  const copied = await runCliOn({ KMS_DATA_DIR: dataDir }, ['store', 'copy', '--to', url, '--json']);
  expect(copied).toMatchObject({ code: 0, stderr: '' });
  const rows = { keys: 5, key_materials: 7, key_rotation: 2, key_imports: 1, grants: 3, key_aliases: 2, key_tags: 4, credentials: 2, audit_checkpoints: 1 };
  expect(JSON.parse(copied.stdout)).toEqual({ to: url, copied: rows });
  const chain = path.join(dataDir, 'audit-cli.log');
  expect(verifyAuditLog(chain)).toMatchObject({ ok: true, records: 1 });
  expect(JSON.parse(readFileSync(chain, 'utf8'))).toMatchObject({ event: 'store-copy', to: url, rows, result: 'OK', operator: { user: os.userInfo().username, pid: expect.any(Number) } });

  const target = await openPostgresStore({ kind: 'postgres', url, password: undefined, sslMode: 'disable', caFile: undefined, poolSize: 2 });
  try {
    expect(await everything(target, keys)).toEqual(expected);
    const before = await everything(target, keys);

    const again = await runCliOn({ KMS_DATA_DIR: dataDir }, ['store', 'copy', '--to', url, '--json']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('the target database is not empty (keys: 5,');
    expect(await everything(target, keys)).toEqual(before);
    // What was refused was not done: no record.
    expect(verifyAuditLog(chain)).toMatchObject({ ok: true, records: 1 });
  } finally {
    await target.close();
  }
});

it('copies nothing when its record cannot be written to audit-cli.log', async () => {
  await SqliteStore.open(path.join(dataDir, 'kms.sqlite')).close();
  // A directory where the chain's file should be: it cannot be appended to.
  mkdirSync(path.join(dataDir, 'audit-cli.log'));
  const url = await cluster().freshDatabase();
  const copy = await runCliOn({ KMS_DATA_DIR: dataDir }, ['store', 'copy', '--to', url, '--json']);
  expect(copy.code).toBe(1);
  expect(copy.stdout).toBe('');
  const target = await openPostgresStore({ kind: 'postgres', url, password: undefined, sslMode: 'disable', caFile: undefined, poolSize: 2 });
  try {
    expect(await target.credentials.list()).toEqual([]);
  } finally {
    await target.close();
  }
});

it('refuses a --to that is not a PostgreSQL URL without repeating its password, and a data directory without an embedded store', async () => {
  const bad = await runCliOn({ KMS_DATA_DIR: dataDir }, ['store', 'copy', '--to', 'mysql://kms:pa55-w0rd@db/kms']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--to must start with postgres://');
  expect(bad.stderr).not.toContain('pa55-w0rd');

  const missing = await runCliOn({ KMS_DATA_DIR: dataDir }, ['store', 'copy', '--to', await cluster().freshDatabase()]);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('no embedded store at');
  expect(existsSync(path.join(dataDir, 'kms.sqlite'))).toBe(false);
});

it("copies every table and column of the embedded store's schema but the job leases, so that a migration adding one cannot be forgotten here", () => {
  const db = openDatabase(path.join(dataDir, 'schema.db'));
  try {
    const tables = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all();
    const schema = Object.fromEntries(
      tables
        .filter(({ name }) => name !== 'job_leases')
        .map(({ name }) => [name, db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${name}') ORDER BY name`).all().map((column) => column.name)]),
    );
    const copied = Object.fromEntries(COPIED_TABLES.map((table) => [table, TABLE_COPIES[table].columns.map(([name]) => name).sort()]));
    expect(copied).toEqual(schema);
  } finally {
    db.close();
  }
});
