import { AliasKeyGoneError, AliasNotHeldError, AliasQuotaExceededError, AliasTakenError, type AliasRecord } from '../../domain/aliases';
import type { AliasRepository } from '../../domain/repositories';
import { aliasRecord, type AliasRow } from '../rows';
import { isForeignKeyViolation, isUniqueViolation } from './errors';
import type { Executor, Session } from './executor';
import { keyExists } from './key-repository';

/** Aliases (v2) in PostgreSQL (migration 8); the semantics are AliasRepository's (src/domain/repositories.ts). */

const COLUMNS = 'a.project_id, a.alias, a.key_id, a.create_time, a.update_time';

/**
 * Throws unless `keyId` is a visible key of the project holding fewer than `maxPerKey` aliases. The
 * key's row is locked to the end of the transaction: the aliases of one key are counted and added
 * one writer at a time, on every instance.
 */
async function checkRoom(tx: Session, projectId: string, keyId: string, maxPerKey: number): Promise<void> {
  const { rows } = await tx.query<{ project_id: string }>('SELECT project_id FROM keys WHERE key_id = $1 AND provisioned FOR UPDATE', [keyId]);
  if (rows[0]?.project_id !== projectId) throw new AliasKeyGoneError();
  const counted = await tx.query<{ n: number }>('SELECT count(*) AS n FROM key_aliases WHERE key_id = $1', [keyId]);
  if (counted.rows[0]!.n >= maxPerKey) throw new AliasQuotaExceededError();
}

export class PostgresAliasRepository implements AliasRepository {
  constructor(private readonly db: Executor) {}

  async insert(record: AliasRecord, maxPerKey: number): Promise<void> {
    try {
      await this.db.atomic(async (tx) => {
        await checkRoom(tx, record.projectId, record.keyId, maxPerKey);
        // Taken (by this or any key) is the primary key's refusal, below: a check here could not see
        // a concurrent insert of the same alias for another key.
        await tx.query('INSERT INTO key_aliases (project_id, alias, key_id, create_time, update_time) VALUES ($1, $2, $3, $4, $5)', [
          record.projectId,
          record.alias,
          record.keyId,
          record.createTime,
          record.updateTime,
        ]);
        tx.changed(record.keyId);
      });
    } catch (error) {
      if (isUniqueViolation(error, 'key_aliases_pkey')) throw new AliasTakenError();
      if (isForeignKeyViolation(error, 'key_aliases_key_fk')) throw new AliasKeyGoneError();
      throw error;
    }
  }

  async get(projectId: string, alias: string): Promise<AliasRecord | undefined> {
    const { rows } = await this.db.query<AliasRow>(`SELECT ${COLUMNS} FROM key_aliases a WHERE a.project_id = $1 AND a.alias = $2`, [projectId, alias]);
    return rows[0] && aliasRecord(rows[0]);
  }

  associate(projectId: string, alias: string, keyId: string, now: number, maxPerKey: number): Promise<{ previousKeyId: string; record: AliasRecord } | undefined> {
    return this.db.atomic(async (tx) => {
      // The alias's row first, then the target key's: every writer takes them in this order.
      const { rows } = await tx.query<AliasRow>(`SELECT ${COLUMNS} FROM key_aliases a WHERE a.project_id = $1 AND a.alias = $2 FOR UPDATE`, [projectId, alias]);
      const current = rows[0];
      if (!current) return undefined;
      // Already the key's: nothing changes (not even its update time).
      if (current.key_id === keyId) return { previousKeyId: keyId, record: aliasRecord(current) };
      await checkRoom(tx, projectId, keyId, maxPerKey);
      await tx.query('UPDATE key_aliases SET key_id = $3, update_time = $4 WHERE project_id = $1 AND alias = $2', [projectId, alias, keyId, now]);
      tx.changed(current.key_id);
      tx.changed(keyId);
      return { previousKeyId: current.key_id, record: aliasRecord({ ...current, key_id: keyId, update_time: now }) };
    });
  }

  remove(projectId: string, keyId: string, aliases: readonly string[]): Promise<void> {
    const unique = [...new Set(aliases)];
    return this.db.atomic(async (tx) => {
      const { rows } = await tx.query<{ alias: string; key_id: string }>(
        'SELECT alias, key_id FROM key_aliases WHERE project_id = $1 AND alias = ANY($2::text[]) FOR UPDATE',
        [projectId, unique],
      );
      const held = new Set(rows.filter((row) => row.key_id === keyId).map((row) => row.alias));
      const notHeld = unique.filter((alias) => !held.has(alias));
      if (notHeld.length > 0) throw new AliasNotHeldError(notHeld);
      await tx.query('DELETE FROM key_aliases WHERE project_id = $1 AND alias = ANY($2::text[])', [projectId, unique]);
      tx.changed(keyId);
    });
  }

  async list(projectId: string, options: { keyId?: string; after?: string; limit: number; now: number }): Promise<AliasRecord[]> {
    const { rows } = await this.db.query<AliasRow>(
      `SELECT ${COLUMNS} FROM key_aliases a JOIN keys k ON k.key_id = a.key_id AND k.provisioned AND ${keyExists(1)}
        WHERE a.project_id = $2 AND ($3::text IS NULL OR a.key_id = $3) AND ($4::text IS NULL OR a.alias > $4)
        ORDER BY a.alias LIMIT $5`,
      [options.now, projectId, options.keyId ?? null, options.after ?? null, options.limit],
    );
    return rows.map(aliasRecord);
  }
}
