import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { GrantParentGoneError, type GrantRecord } from '../../src/domain/grants';
import { MIGRATIONS } from '../../src/store/sqlite/database';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';

/**
 * The SQLite grant repository's parent links (migration 5): a grant made on another's authority
 * goes with it, and the grants of a database made before the migration keep working, with no
 * parent. A second, plain connection to the file plays the older release, and counts rows.
 */

const KEY_ID = '0d0466b0-e727-4d9c-b35d-f84bb474a37f';
const NOW = 1_700_000_000_000;

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kms-grant-store-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function addKey(db: Database.Database): void {
  db.prepare(
    `INSERT INTO keys (key_id, project_id, key_alias, key_spec, key_usage, origin, key_state, creation_date, provisioned)
     VALUES (?, 'p1', 'k', 'AES_256', 'ENCRYPT_DECRYPT', 'kms', '2', ?, 1)`,
  ).run(KEY_ID, NOW);
}

function grant(id: string, parentGrantId: string | null): Omit<GrantRecord, 'projectId'> {
  return {
    grantId: id.repeat(64),
    keyId: KEY_ID,
    name: '',
    granteePrincipal: 'someone',
    granteeType: 'user',
    retiringPrincipal: null,
    issuingPrincipal: 'issuer',
    operations: ['describe-key', 'create-grant'],
    creationDate: NOW,
    parentGrantId: parentGrantId === null ? null : parentGrantId.repeat(64),
  };
}

it('migration 5 keeps the grants of an older database, with no parent', async () => {
  const file = path.join(dir, 'kms.sqlite');
  const old = new Database(file);
  for (const migration of MIGRATIONS.slice(0, 4)) old.exec(migration);
  old.pragma('user_version = 4');
  addKey(old);
  old.prepare(
    `INSERT INTO grants (grant_id, key_id, grantee_principal, grantee_principal_type, issuing_principal, operations, creation_date)
     VALUES (?, ?, 'someone', 'user', 'issuer', '["describe-key"]', ?)`,
  ).run('a'.repeat(64), KEY_ID, NOW);
  old.close();

  const store = SqliteStore.open(file);
  const db = new Database(file, { readonly: true });
  try {
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    expect(await store.grants.get('p1', 'a'.repeat(64), NOW)).toMatchObject({ operations: ['describe-key'], parentGrantId: null });
    expect(await store.grants.removeWithDescendants('a'.repeat(64))).toEqual({ removed: true, cascaded: [] });
  } finally {
    db.close();
    await store.close();
  }
});

describe('removeWithDescendants', () => {
  let db: Database.Database;
  let store: SqliteStore;

  beforeEach(() => {
    const file = path.join(dir, 'kms.sqlite');
    store = SqliteStore.open(file);
    db = new Database(file);
    // As the store's own connections have it (foreign keys are a connection's setting in SQLite).
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    addKey(db);
  });

  afterEach(async () => {
    db.close();
    await store.close();
  });

  const count = (): number => (db.prepare('SELECT count(*) AS n FROM grants').get() as { n: number }).n;

  it('removes a grant and every grant made on it, recursively, naming each with its parent; a sibling stays', async () => {
    // a ← b ← c, a ← d; e stands alone.
    for (const [id, parent] of [['a', null], ['b', 'a'], ['c', 'b'], ['d', 'a'], ['e', null]] as const) await store.grants.insert(grant(id, parent), 100);
    const { removed, cascaded } = await store.grants.removeWithDescendants('a'.repeat(64));
    expect(removed).toBe(true);
    expect(cascaded.map((c) => [c.grantId[0], c.parentGrantId[0]]).sort()).toEqual([['b', 'a'], ['c', 'b'], ['d', 'a']]);
    expect(count()).toBe(1);
    expect(await store.grants.removeWithDescendants('a'.repeat(64))).toEqual({ removed: false, cascaded: [] });
  });

  it('refuses a grant whose parent is gone (GrantParentGoneError), and the foreign key ends children with their parent', async () => {
    await store.grants.insert(grant('a', null), 100);
    await store.grants.insert(grant('b', 'a'), 100);
    await store.grants.removeWithDescendants('a'.repeat(64));
    await expect(store.grants.insert(grant('c', 'a'), 100)).rejects.toThrow(GrantParentGoneError);
    await store.grants.insert(grant('a', null), 100);
    await store.grants.insert(grant('b', 'a'), 100);
    // Even a plain DELETE of the parent (no code path does one) takes its children.
    db.prepare('DELETE FROM grants WHERE grant_id = ?').run('a'.repeat(64));
    expect(count()).toBe(0);
  });
});
