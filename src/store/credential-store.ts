import type Database from 'better-sqlite3';
import { ChangeCursor, type ChangeWatch } from './change-watch';

/** Credential records. No secret is stored in the clear: see database.ts, migration 2. */

export type CredentialKind = 'aksk' | 'token';

export interface CredentialRecord {
  /** The access key, or the token's id: what logs and the audit trail name. */
  readonly id: string;
  readonly kind: CredentialKind;
  readonly projectId: string;
  readonly actions: readonly string[];
  readonly description: string;
  readonly sealedSecret: Buffer | null;
  readonly tokenHash: string | null;
  readonly enabled: boolean;
  readonly createdAt: number;
  readonly expiresAt: number | null;
}

interface CredentialRow {
  id: string;
  kind: CredentialKind;
  project_id: string;
  actions: string;
  description: string;
  sealed_secret: Buffer | null;
  token_hash: string | null;
  enabled: number;
  created_at: number;
  expires_at: number | null;
}

function toRecord(row: CredentialRow): CredentialRecord {
  return {
    id: row.id,
    kind: row.kind,
    projectId: row.project_id,
    actions: JSON.parse(row.actions) as string[],
    description: row.description,
    sealedSecret: row.sealed_secret,
    tokenHash: row.token_hash,
    enabled: row.enabled === 1,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  };
}

export class CredentialStore {
  private readonly statements;
  /**
   * Credentials by id and by token hash: every request reads one. Cleared by this store's own
   * writes and whenever another process (the command-line tool) has written to the database, so
   * disabling a credential takes effect on the next request.
   */
  private readonly cache = new Map<string, CredentialRecord>();
  private readonly watch: ChangeCursor;

  constructor(db: Database.Database, changes: ChangeWatch) {
    this.watch = new ChangeCursor(changes);
    this.statements = {
      insert: db.prepare(
        `INSERT INTO credentials (id, kind, project_id, actions, description, sealed_secret, token_hash, enabled, created_at, expires_at)
         VALUES (@id, @kind, @projectId, @actions, @description, @sealedSecret, @tokenHash, 1, @createdAt, @expiresAt)`,
      ),
      get: db.prepare<[string], CredentialRow>('SELECT * FROM credentials WHERE id = ?'),
      byTokenHash: db.prepare<[string], CredentialRow>('SELECT * FROM credentials WHERE token_hash = ?'),
      all: db.prepare<[], CredentialRow>('SELECT * FROM credentials ORDER BY created_at, id'),
      byProject: db.prepare<[string], CredentialRow>('SELECT * FROM credentials WHERE project_id = ? ORDER BY created_at, id'),
      setEnabled: db.prepare<[number, string]>('UPDATE credentials SET enabled = ? WHERE id = ?'),
      remove: db.prepare<[string]>('DELETE FROM credentials WHERE id = ?'),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM credentials'),
    };
  }

  insert(record: Omit<CredentialRecord, 'enabled'>): void {
    this.statements.insert.run({ ...record, actions: JSON.stringify(record.actions) });
    this.cache.clear();
  }

  get(id: string): CredentialRecord | undefined {
    return this.cached(`id:${id}`, () => this.statements.get.get(id));
  }

  getByTokenHash(tokenHash: string): CredentialRecord | undefined {
    return this.cached(`token:${tokenHash}`, () => this.statements.byTokenHash.get(tokenHash));
  }

  private cached(cacheKey: string, read: () => CredentialRow | undefined): CredentialRecord | undefined {
    if (this.watch.changedElsewhere()) this.cache.clear();
    const hit = this.cache.get(cacheKey);
    if (hit) return hit;
    const row = read();
    if (!row) return undefined; // Unknown ids are not cached: a flood of them must not grow the cache.
    const record = toRecord(row);
    this.cache.set(cacheKey, record);
    return record;
  }

  list(projectId?: string): CredentialRecord[] {
    const rows = projectId === undefined ? this.statements.all.all() : this.statements.byProject.all(projectId);
    return rows.map(toRecord);
  }

  /** Returns false when there is no such credential. */
  setEnabled(id: string, enabled: boolean): boolean {
    this.cache.clear();
    return this.statements.setEnabled.run(enabled ? 1 : 0, id).changes === 1;
  }

  /** Returns false when there is no such credential. */
  remove(id: string): boolean {
    this.cache.clear();
    return this.statements.remove.run(id).changes === 1;
  }

  count(): number {
    return this.statements.count.get()!.n;
  }
}
