import type { CredentialRecord } from '../../domain/credentials';
import type { CredentialRepository } from '../../domain/repositories';
import { credentialRecord, jsonStringList, type CredentialRow } from '../rows';
import type { SqliteSession } from './session';

/** Credential records (migration 2). No secret is stored in the clear: secret keys sealed, tokens hashed. */

interface SqliteCredentialRow extends CredentialRow {
  /** JSON text. */
  actions: string;
  enabled: number;
}

function toRecord(row: SqliteCredentialRow): CredentialRecord {
  return credentialRecord(row, jsonStringList(row.actions, "credential's actions"), row.enabled === 1);
}

/**
 * Every write is announced as a change to anything ({kind: 'all'}): the change feed names keys
 * only, and a credential disabled must stop working in every process (their caches drop it).
 */
export class SqliteCredentialRepository implements CredentialRepository {
  private readonly statements;

  constructor(private readonly session: SqliteSession) {
    const { db } = session;
    this.statements = {
      insert: db.prepare(
        `INSERT INTO credentials (id, kind, project_id, actions, description, sealed_secret, token_hash, enabled, created_at, expires_at)
         VALUES (@id, @kind, @projectId, @actions, @description, @sealedSecret, @tokenHash, 1, @createdAt, @expiresAt)`,
      ),
      get: db.prepare<[string], SqliteCredentialRow>('SELECT * FROM credentials WHERE id = ?'),
      byTokenHash: db.prepare<[string], SqliteCredentialRow>('SELECT * FROM credentials WHERE token_hash = ?'),
      all: db.prepare<[], SqliteCredentialRow>('SELECT * FROM credentials ORDER BY created_at, id'),
      byProject: db.prepare<[string], SqliteCredentialRow>('SELECT * FROM credentials WHERE project_id = ? ORDER BY created_at, id'),
      setEnabled: db.prepare<[number, string]>('UPDATE credentials SET enabled = ? WHERE id = ?'),
      remove: db.prepare<[string]>('DELETE FROM credentials WHERE id = ?'),
      count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM credentials'),
    };
  }

  async insert(record: Omit<CredentialRecord, 'enabled'>): Promise<void> {
    await this.session.atomic(() => this.statements.insert.run({ ...record, actions: JSON.stringify(record.actions) }));
    this.session.announce({ kind: 'all' });
  }

  async get(id: string): Promise<CredentialRecord | undefined> {
    const row = this.statements.get.get(id);
    return row && toRecord(row);
  }

  async getByTokenHash(tokenHash: string): Promise<CredentialRecord | undefined> {
    const row = this.statements.byTokenHash.get(tokenHash);
    return row && toRecord(row);
  }

  async list(projectId?: string): Promise<CredentialRecord[]> {
    const rows = projectId === undefined ? this.statements.all.all() : this.statements.byProject.all(projectId);
    return rows.map(toRecord);
  }

  async setEnabled(id: string, enabled: boolean): Promise<boolean> {
    const changed = await this.session.atomic(() => this.statements.setEnabled.run(enabled ? 1 : 0, id).changes === 1);
    this.session.announce({ kind: 'all' });
    return changed;
  }

  async remove(id: string): Promise<boolean> {
    const removed = await this.session.atomic(() => this.statements.remove.run(id).changes === 1);
    this.session.announce({ kind: 'all' });
    return removed;
  }

  async count(): Promise<number> {
    return this.statements.count.get()!.n;
  }
}
