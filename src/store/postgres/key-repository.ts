import { DuplicateAliasError, QuotaExceededError, type KeyRecord, type KeyState, type MaterialRef } from '../../domain/keys';
import type { KeyRepository, ReadOptions } from '../../domain/repositories';
import { isUniqueViolation } from './errors';
import type { Executor } from './executor';
import { ADVISORY_NAMESPACE } from './migrations';
import { keyRecord, keyState, type KeyRow } from '../rows';

/** Key records and their material versions in PostgreSQL (migration 1). */


export const KEY_COLUMNS = 'key_id, project_id, key_alias, key_description, key_spec, key_usage, origin, key_state, creation_date, scheduled_deletion_date, material_version';

/**
 * The deletion rule (isDestroyed, src/domain/keys.ts) as SQL, for the keys table aliased `k`, with
 * `now` as the numbered parameter given: a key exists unless it is pending deletion and its date
 * has come. The store contract suite holds this to isDestroyed at the boundary.
 */
export function keyExists(nowParameter: number): string {
  return `NOT (k.key_state = '4' AND k.scheduled_deletion_date IS NOT NULL AND k.scheduled_deletion_date <= $${nowParameter})`;
}

/** pg_advisory_xact_lock's (int, int) key: the first number names the project quota's lock. */
const PROJECT_QUOTA_LOCK = ADVISORY_NAMESPACE + 1;


export class PostgresKeyRepository implements KeyRepository {
  constructor(private readonly db: Executor) {}

  async insertProvisioning(record: KeyRecord, maxKeysInProject: number): Promise<void> {
    try {
      await this.db.atomic(async (tx) => {
        // One creation at a time per project, on every instance, from the count to the commit: the
        // lock is the transaction's, so the count below sees every creation that took it before.
        await tx.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [PROJECT_QUOTA_LOCK, record.projectId]);
        const { rows } = await tx.query<{ n: number }>(`SELECT count(*) AS n FROM keys k WHERE k.project_id = $1 AND ${keyExists(2)}`, [
          record.projectId,
          record.creationDate,
        ]);
        if (rows[0]!.n >= maxKeysInProject) throw new QuotaExceededError();
        await tx.query(
          `INSERT INTO keys (${KEY_COLUMNS}, provisioned) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, false)`,
          [
            record.keyId,
            record.projectId,
            record.alias,
            record.description,
            record.keySpec,
            record.keyUsage,
            record.origin,
            record.state,
            record.creationDate,
            record.scheduledDeletionDate,
            record.materialVersion,
          ],
        );
        await tx.query('INSERT INTO key_materials (key_id, version, created_at) VALUES ($1, $2, $3)', [record.keyId, record.materialVersion, record.creationDate]);
      });
    } catch (error) {
      if (isUniqueViolation(error, 'keys_alias_unique')) throw new DuplicateAliasError();
      throw error;
    }
  }

  markProvisioned(keyId: string): Promise<boolean> {
    return this.db.atomic(async (tx) => {
      const { rowCount } = await tx.query('UPDATE keys SET provisioned = true WHERE key_id = $1 AND NOT rolling_back', [keyId]);
      if (rowCount !== 1) return false;
      tx.changed(keyId);
      return true;
    });
  }

  claimRollback(keyId: string): Promise<boolean> {
    // Invisible either way: nothing for the other instances' caches to forget. The row lock makes
    // this and markProvisioned wait for each other, and each re-reads the row's flags after the wait.
    return this.db.atomic(async (tx) => (await tx.query('UPDATE keys SET rolling_back = true WHERE key_id = $1 AND NOT provisioned', [keyId])).rowCount === 1);
  }

  remove(keyId: string): Promise<void> {
    // Material versions, grants and rotation state go by ON DELETE CASCADE.
    return this.db.atomic(async (tx) => {
      const { rowCount } = await tx.query('DELETE FROM keys WHERE key_id = $1', [keyId]);
      if (rowCount) tx.changed(keyId);
    });
  }

  async get(projectId: string, keyId: string, options: ReadOptions = {}): Promise<KeyRecord | undefined> {
    const { rows } = await this.db.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM keys WHERE key_id = $1 AND project_id = $2 AND provisioned${options.lock ? ' FOR UPDATE' : ''}`,
      [keyId, projectId],
    );
    return rows[0] && keyRecord(rows[0]);
  }

  async getByAlias(projectId: string, alias: string): Promise<KeyRecord | undefined> {
    const { rows } = await this.db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM keys WHERE project_id = $1 AND key_alias = $2 AND provisioned`, [projectId, alias]);
    return rows[0] && keyRecord(rows[0]);
  }

  async update(record: KeyRecord): Promise<void> {
    try {
      await this.db.atomic(async (tx) => {
        const { rowCount } = await tx.query(
          'UPDATE keys SET key_alias = $2, key_description = $3, key_state = $4, scheduled_deletion_date = $5 WHERE key_id = $1',
          [record.keyId, record.alias, record.description, record.state, record.scheduledDeletionDate],
        );
        if (rowCount) tx.changed(record.keyId);
      });
    } catch (error) {
      if (isUniqueViolation(error, 'keys_alias_unique')) throw new DuplicateAliasError();
      throw error;
    }
  }

  async countKeys(projectId: string, now: number): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(`SELECT count(*) AS n FROM keys k WHERE k.project_id = $1 AND ${keyExists(2)}`, [projectId, now]);
    return rows[0]!.n;
  }

  async countByState(now: number): Promise<Map<KeyState, number>> {
    const { rows } = await this.db.query<{ key_state: string; n: number }>(
      `SELECT k.key_state, count(*) AS n FROM keys k WHERE k.provisioned AND ${keyExists(1)} GROUP BY k.key_state`,
      [now],
    );
    return new Map(rows.map((row) => [keyState(row.key_state), row.n]));
  }

  async list(projectId: string, options: { state?: KeyState; spec?: string; offset: number; limit: number; now: number }): Promise<{ records: KeyRecord[]; total: number }> {
    const values: unknown[] = [projectId, options.now];
    let where = `k.project_id = $1 AND k.provisioned AND ${keyExists(2)}`;
    if (options.state) {
      values.push(options.state);
      where += ` AND k.key_state = $${values.length}`;
    }
    if (options.spec) {
      values.push(options.spec);
      where += ` AND k.key_spec = $${values.length}`;
    }
    // One statement, so the page and its total come from the same snapshot.
    const { rows } = await this.db.query<KeyRow & { total: number }>(
      `SELECT ${KEY_COLUMNS}, count(*) OVER () AS total FROM keys k WHERE ${where}
       ORDER BY k.creation_date, k.seq LIMIT $${values.length + 1} OFFSET $${values.length + 2}`,
      [...values, options.limit, options.offset],
    );
    if (rows.length > 0 || options.offset === 0) return { records: rows.map(keyRecord), total: rows[0]?.total ?? 0 };
    // A page past the end has no row to carry the total.
    const { rows: counted } = await this.db.query<{ n: number }>(`SELECT count(*) AS n FROM keys k WHERE ${where}`, values);
    return { records: [], total: counted[0]!.n };
  }

  async unprovisioned(before: number): Promise<KeyRecord[]> {
    const { rows } = await this.db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM keys WHERE NOT provisioned AND creation_date <= $1 ORDER BY creation_date, seq`, [before]);
    return rows.map(keyRecord);
  }

  async dueForDeletion(now: number): Promise<KeyRecord[]> {
    const { rows } = await this.db.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM keys WHERE key_state = '4' AND scheduled_deletion_date <= $1 AND provisioned ORDER BY scheduled_deletion_date, seq`,
      [now],
    );
    return rows.map(keyRecord);
  }

  async materialVersions(keyId: string): Promise<number[]> {
    const { rows } = await this.db.query<{ version: number }>('SELECT version FROM key_materials WHERE key_id = $1 ORDER BY version', [keyId]);
    return rows.map((row) => row.version);
  }

  async allMaterials(): Promise<MaterialRef[]> {
    // A version past material_version is a rotation under way (or interrupted): not yet the key's.
    // A key pending import (state 5) has no material in the token.
    const { rows } = await this.db.query<{ key_id: string; version: number }>(
      "SELECT m.key_id, m.version FROM key_materials m JOIN keys k USING (key_id) WHERE k.provisioned AND k.key_state <> '5' AND m.version <= k.material_version ORDER BY m.key_id, m.version",
    );
    return rows.map((row) => ({ keyId: row.key_id, version: row.version }));
  }
}
