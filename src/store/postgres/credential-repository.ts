import type { CredentialRecord } from '../../domain/credentials';
import type { CredentialRepository } from '../../domain/repositories';
import type { Executor } from './executor';
import { credentialRecord, stringList, type CredentialRow } from '../rows';

/**
 * Credentials in PostgreSQL (migration 2), shared by every instance: a credential issued through
 * one instance's CLI works on all of them. A change is announced as "anything changed" on the
 * change feed (the feed names keys only), so that every instance's credential cache drops it.
 */

interface PostgresCredentialRow extends CredentialRow {
  actions: string[];
  enabled: boolean;
}

const COLUMNS = 'id, kind, project_id, actions, description, sealed_secret, token_hash, enabled, created_at, expires_at';

function toRecord(row: PostgresCredentialRow): CredentialRecord {
  return credentialRecord(row, stringList(row.actions, "credential's actions"), row.enabled);
}

export class PostgresCredentialRepository implements CredentialRepository {
  constructor(private readonly db: Executor) {}

  insert(record: Omit<CredentialRecord, 'enabled'>): Promise<void> {
    return this.db.atomic(async (tx) => {
      await tx.query(`INSERT INTO credentials (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $9)`, [
        record.id,
        record.kind,
        record.projectId,
        [...record.actions],
        record.description,
        record.sealedSecret,
        record.tokenHash,
        record.createdAt,
        record.expiresAt,
      ]);
      tx.changed(undefined);
    });
  }

  async get(id: string): Promise<CredentialRecord | undefined> {
    const { rows } = await this.db.query<PostgresCredentialRow>(`SELECT ${COLUMNS} FROM credentials WHERE id = $1`, [id]);
    return rows[0] && toRecord(rows[0]);
  }

  async getByTokenHash(tokenHash: string): Promise<CredentialRecord | undefined> {
    const { rows } = await this.db.query<PostgresCredentialRow>(`SELECT ${COLUMNS} FROM credentials WHERE token_hash = $1`, [tokenHash]);
    return rows[0] && toRecord(rows[0]);
  }

  async list(projectId?: string): Promise<CredentialRecord[]> {
    const { rows } =
      projectId === undefined
        ? await this.db.query<PostgresCredentialRow>(`SELECT ${COLUMNS} FROM credentials ORDER BY created_at, id`)
        : await this.db.query<PostgresCredentialRow>(`SELECT ${COLUMNS} FROM credentials WHERE project_id = $1 ORDER BY created_at, id`, [projectId]);
    return rows.map(toRecord);
  }

  setEnabled(id: string, enabled: boolean): Promise<boolean> {
    return this.changing('UPDATE credentials SET enabled = $2 WHERE id = $1', [id, enabled]);
  }

  remove(id: string): Promise<boolean> {
    return this.changing('DELETE FROM credentials WHERE id = $1', [id]);
  }

  private changing(sql: string, values: unknown[]): Promise<boolean> {
    return this.db.atomic(async (tx) => {
      const { rowCount } = await tx.query(sql, values);
      if (rowCount !== 1) return false;
      tx.changed(undefined);
      return true;
    });
  }

  async count(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>('SELECT count(*) AS n FROM credentials');
    return rows[0]!.n;
  }
}
