import type { ReadOptions, RotationRepository } from '../../domain/repositories';
import {
  DAY_MS,
  ROTATION_OFF,
  type MaterialUsage,
  type RotationCandidate,
  type RotationClaim,
  type RotationReason,
  type RotationSettings,
  type RotationState,
  type SealCount,
} from '../../domain/rotation';
import type { Executor, Sql } from './executor';

/**
 * Rotation settings, claims and seal counts in PostgreSQL (migration 4); the semantics are
 * RotationRepository's (src/domain/repositories.ts). A claim is one conditional UPDATE: of several instances' at once,
 * the first sets claimed_at and the others, re-checking the row once it commits (READ COMMITTED's
 * re-evaluation of an UPDATE's WHERE), match nothing.
 */

interface StateRow {
  enabled: boolean;
  interval_days: number;
  next_rotation_at: number | null;
  last_rotation_at: number | null;
}

/** A row for a key that exists (a key removed meanwhile gets none, and then no claim). */
function ensureRow(sql: Sql, keyId: string): Promise<unknown> {
  return sql.query('INSERT INTO key_rotation (key_id) SELECT key_id FROM keys WHERE key_id = $1 ON CONFLICT (key_id) DO NOTHING', [keyId]);
}

export class PostgresRotationRepository implements RotationRepository {
  constructor(private readonly db: Executor) {}

  async state(keyId: string, options: ReadOptions = {}): Promise<RotationState> {
    const read = async (sql: Sql): Promise<RotationState> => {
      const { rows } = await sql.query<StateRow>(
        `SELECT enabled, interval_days, next_rotation_at, last_rotation_at FROM key_rotation WHERE key_id = $1${options.lock ? ' FOR UPDATE' : ''}`,
        [keyId],
      );
      const row = rows[0];
      if (!row) return ROTATION_OFF;
      return { enabled: row.enabled, intervalDays: row.interval_days, nextRotationAt: row.next_rotation_at, lastRotationAt: row.last_rotation_at };
    };
    if (!options.lock) return read(this.db);
    // A key never configured has no row to lock: make it first, so that two first-time settings
    // changes wait for each other instead of both reading ROTATION_OFF.
    await ensureRow(this.db, keyId);
    return read(this.db);
  }

  async setSettings(keyId: string, settings: RotationSettings): Promise<void> {
    await this.db.query(
      `INSERT INTO key_rotation (key_id, enabled, interval_days, next_rotation_at)
       SELECT key_id, $2, $3, $4 FROM keys WHERE key_id = $1
       ON CONFLICT (key_id) DO UPDATE SET enabled = excluded.enabled, interval_days = excluded.interval_days, next_rotation_at = excluded.next_rotation_at`,
      [keyId, settings.enabled, settings.intervalDays, settings.nextRotationAt],
    );
  }

  claim(keyId: string, reason: RotationReason, now: number, budget: number): Promise<number | undefined> {
    return this.db.atomic(async (tx) => {
      await ensureRow(tx, keyId);
      const { rows } = await tx.query<{ claimed_version: number }>(
        `UPDATE key_rotation r SET claimed_at = $2,
                claimed_version = (SELECT material_version + 1 FROM keys WHERE key_id = $1)
         WHERE r.key_id = $1 AND r.claimed_at IS NULL
           AND EXISTS (SELECT 1 FROM keys k WHERE k.key_id = $1 AND k.provisioned AND ($3::text = 'on-demand' OR k.key_state = '2'))
           AND ($3::text = 'on-demand'
                OR ($3::text = 'scheduled' AND r.enabled AND r.next_rotation_at <= $2)
                OR ($3::text = 'budget' AND (SELECT m.seals FROM key_materials m JOIN keys k USING (key_id)
                                              WHERE m.key_id = $1 AND m.version = k.material_version) >= $4))
         RETURNING claimed_version`,
        [keyId, now, reason, budget],
      );
      const claimed = rows[0];
      if (!claimed) return undefined;
      await tx.query('INSERT INTO key_materials (key_id, version, created_at) VALUES ($1, $2, $3)', [keyId, claimed.claimed_version, now]);
      return claimed.claimed_version;
    });
  }

  finish(keyId: string, version: number, claimedAt: number, now: number): Promise<boolean> {
    return this.db.atomic(async (tx) => {
      const { rowCount } = await tx.query(
        `UPDATE key_rotation SET claimed_at = NULL, claimed_version = NULL, last_rotation_at = $4,
                next_rotation_at = CASE WHEN enabled THEN $4 + interval_days * ${DAY_MS}::bigint ELSE NULL END
         WHERE key_id = $1 AND claimed_version = $2 AND claimed_at = $3`,
        [keyId, version, claimedAt, now],
      );
      if (rowCount !== 1) return false;
      await tx.query('UPDATE keys SET material_version = $2 WHERE key_id = $1 AND material_version = $2 - 1', [keyId, version]);
      tx.changed(keyId);
      return true;
    });
  }

  rollBack(keyId: string, version: number): Promise<void> {
    return this.db.atomic(async (tx) => {
      await tx.query(
        'DELETE FROM key_materials WHERE key_id = $1 AND version = $2 AND version > (SELECT material_version FROM keys WHERE key_id = $1)',
        [keyId, version],
      );
      await tx.query('UPDATE key_rotation SET claimed_at = NULL, claimed_version = NULL WHERE key_id = $1 AND claimed_version = $2', [keyId, version]);
    });
  }

  async claimedBefore(before: number): Promise<RotationClaim[]> {
    const { rows } = await this.db.query<{ key_id: string; project_id: string; claimed_version: number; claimed_at: number }>(
      'SELECT r.key_id, k.project_id, r.claimed_version, r.claimed_at FROM key_rotation r JOIN keys k USING (key_id) WHERE r.claimed_at <= $1 ORDER BY r.claimed_at, r.key_id',
      [before],
    );
    return rows.map((row) => ({ keyId: row.key_id, projectId: row.project_id, version: row.claimed_version, claimedAt: row.claimed_at }));
  }

  async due(now: number): Promise<RotationCandidate[]> {
    return this.candidates(
      `SELECT r.key_id, k.project_id FROM key_rotation r JOIN keys k USING (key_id)
       WHERE r.enabled AND r.next_rotation_at <= $1 AND r.claimed_at IS NULL AND k.provisioned AND k.key_state = '2' ORDER BY r.next_rotation_at, r.key_id`,
      now,
    );
  }

  async overBudget(budget: number): Promise<RotationCandidate[]> {
    return this.candidates(
      `SELECT k.key_id, k.project_id FROM key_materials m JOIN keys k ON k.key_id = m.key_id AND m.version = k.material_version
       WHERE m.seals >= $1 AND k.provisioned AND k.key_state = '2' AND k.origin = 'kms' ORDER BY k.key_id`,
      budget,
    );
  }

  private async candidates(sql: string, value: number): Promise<RotationCandidate[]> {
    const { rows } = await this.db.query<{ key_id: string; project_id: string }>(sql, [value]);
    return rows.map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }

  async mostSeals(): Promise<number> {
    const { rows } = await this.db.query<{ seals: number | null }>(
      `SELECT max(m.seals) AS seals FROM key_materials m JOIN keys k ON k.key_id = m.key_id AND m.version = k.material_version
       WHERE k.provisioned AND k.key_state = '2'`,
    );
    return rows[0]?.seals ?? 0;
  }

  async addSeals(counts: readonly SealCount[]): Promise<void> {
    if (counts.length === 0) return;
    // One statement: atomic, and one round trip whatever the batch. Summed per version first, so
    // that a batch naming one version twice adds both (an UPDATE … FROM matches each row once).
    await this.db.query(
      `UPDATE key_materials m SET seals = m.seals + c.count
       FROM (SELECT key_id, version, sum(count)::bigint AS count
               FROM unnest($1::text[], $2::int[], $3::bigint[]) AS u (key_id, version, count)
              GROUP BY key_id, version) c
       WHERE m.key_id = c.key_id AND m.version = c.version`,
      [counts.map((c) => c.keyId), counts.map((c) => c.version), counts.map((c) => c.count)],
    );
  }

  async materials(keyId: string): Promise<MaterialUsage[]> {
    const { rows } = await this.db.query<{ version: number; created_at: number; seals: number }>(
      `SELECT m.version, m.created_at, m.seals FROM key_materials m JOIN keys k USING (key_id)
       WHERE m.key_id = $1 AND m.version <= k.material_version ORDER BY m.version`,
      [keyId],
    );
    return rows.map((row) => ({ version: row.version, createdAt: row.created_at, seals: row.seals }));
  }
}
