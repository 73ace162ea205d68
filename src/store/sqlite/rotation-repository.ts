import type { RotationRepository, ReadOptions } from '../../domain/repositories';
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
import type { SqliteSession } from './session';

/**
 * Rotation settings, rotations under way and seal counts (migration 4), beside the key records. A
 * rotation is claimed by one conditional UPDATE, so that of several processes or instances sharing
 * the database exactly one performs it; the claim names the material version it makes, whose
 * key_materials row exists from the claim on (so that a deletion destroys that HSM object too).
 * Finishing the rotation moves the key's material_version in the same transaction.
 */

interface StateRow {
  enabled: number;
  interval_days: number;
  next_rotation_at: number | null;
  last_rotation_at: number | null;
}

interface ClaimRow {
  key_id: string;
  project_id: string;
  claimed_version: number;
  claimed_at: number;
}

export class SqliteRotationRepository implements RotationRepository {
  private readonly statements;

  constructor(private readonly session: SqliteSession) {
    const { db } = session;
    this.statements = {
      state: db.prepare<[string], StateRow>('SELECT enabled, interval_days, next_rotation_at, last_rotation_at FROM key_rotation WHERE key_id = ?'),
      // Only for a key that exists (a key removed meanwhile gets no row, and then no claim).
      ensure: db.prepare('INSERT INTO key_rotation (key_id) SELECT key_id FROM keys WHERE key_id = ? ON CONFLICT (key_id) DO NOTHING'),
      setSettings: db.prepare('UPDATE key_rotation SET enabled = @enabled, interval_days = @intervalDays, next_rotation_at = @nextRotationAt WHERE key_id = @keyId'),
      // The claim: at most one process's UPDATE matches, because the first sets claimed_at, and
      // finishing moves what the condition looks at (next_rotation_at, the current version's seals).
      claim: db.prepare<Record<string, string | number>, { claimed_version: number }>(
        `UPDATE key_rotation SET claimed_at = @now,
                claimed_version = (SELECT material_version + 1 FROM keys WHERE key_id = @keyId)
         WHERE key_id = @keyId AND claimed_at IS NULL
           AND EXISTS (SELECT 1 FROM keys WHERE key_id = @keyId AND provisioned = 1
                         AND (@reason = 'on-demand' OR key_state = '2'))
           AND (@reason = 'on-demand'
                OR (@reason = 'scheduled' AND enabled = 1 AND next_rotation_at <= @now)
                OR (@reason = 'budget' AND (SELECT m.seals FROM key_materials m JOIN keys k USING (key_id)
                                            WHERE m.key_id = @keyId AND m.version = k.material_version) >= @budget))
         RETURNING claimed_version`,
      ),
      insertMaterial: db.prepare('INSERT INTO key_materials (key_id, version, created_at) VALUES (?, ?, ?)'),
      // nextRotationAfter (src/domain/rotation.ts), in SQL.
      finish: db.prepare(
        `UPDATE key_rotation SET claimed_at = NULL, claimed_version = NULL, last_rotation_at = @now,
                next_rotation_at = CASE WHEN enabled = 1 THEN @now + interval_days * ${DAY_MS} ELSE NULL END
         WHERE key_id = @keyId AND claimed_version = @version AND claimed_at = @claimedAt`,
      ),
      advance: db.prepare('UPDATE keys SET material_version = @version WHERE key_id = @keyId AND material_version = @version - 1'),
      dropMaterial: db.prepare(
        'DELETE FROM key_materials WHERE key_id = @keyId AND version = @version AND version > (SELECT material_version FROM keys WHERE key_id = @keyId)',
      ),
      release: db.prepare('UPDATE key_rotation SET claimed_at = NULL, claimed_version = NULL WHERE key_id = @keyId AND claimed_version = @version'),
      claimedBefore: db.prepare<[number], ClaimRow>(
        'SELECT r.key_id, k.project_id, r.claimed_version, r.claimed_at FROM key_rotation r JOIN keys k USING (key_id) WHERE r.claimed_at <= ?',
      ),
      due: db.prepare<[number], { key_id: string; project_id: string }>(
        `SELECT r.key_id, k.project_id FROM key_rotation r JOIN keys k USING (key_id)
         WHERE r.enabled = 1 AND r.next_rotation_at <= ? AND r.claimed_at IS NULL AND k.provisioned = 1 AND k.key_state = '2'`,
      ),
      overBudget: db.prepare<[number], { key_id: string; project_id: string }>(
        `SELECT k.key_id, k.project_id FROM key_materials m JOIN keys k ON k.key_id = m.key_id AND m.version = k.material_version
         WHERE m.seals >= ? AND k.provisioned = 1 AND k.key_state = '2' AND k.origin = 'kms'`,
      ),
      mostSeals: db.prepare<[], { seals: number | null }>(
        `SELECT max(m.seals) AS seals FROM key_materials m JOIN keys k ON k.key_id = m.key_id AND m.version = k.material_version
         WHERE k.provisioned = 1 AND k.key_state = '2'`,
      ),
      addSeals: db.prepare('UPDATE key_materials SET seals = seals + @count WHERE key_id = @keyId AND version = @version'),
      materials: db.prepare<[string], { version: number; created_at: number; seals: number }>(
        `SELECT m.version, m.created_at, m.seals FROM key_materials m JOIN keys k USING (key_id)
         WHERE m.key_id = ? AND m.version <= k.material_version ORDER BY m.version`,
      ),
    };
  }

  // SQLite's transactions (BEGIN IMMEDIATE) exclude every other writer already: `lock` needs nothing more.
  async state(keyId: string, _options?: ReadOptions): Promise<RotationState> {
    const row = this.statements.state.get(keyId);
    if (!row) return ROTATION_OFF;
    return { enabled: row.enabled === 1, intervalDays: row.interval_days, nextRotationAt: row.next_rotation_at, lastRotationAt: row.last_rotation_at };
  }

  async setSettings(keyId: string, settings: RotationSettings): Promise<void> {
    await this.session.atomic(() => {
      this.statements.ensure.run(keyId);
      this.statements.setSettings.run({ keyId, enabled: settings.enabled ? 1 : 0, intervalDays: settings.intervalDays, nextRotationAt: settings.nextRotationAt });
    });
    this.session.announce({ kind: 'key', keyId });
  }

  async claim(keyId: string, reason: RotationReason, now: number, budget: number): Promise<number | undefined> {
    return this.session.atomic(() => {
      this.statements.ensure.run(keyId);
      const claimed = this.statements.claim.get({ keyId, reason, now, budget });
      if (!claimed) return undefined;
      this.statements.insertMaterial.run(keyId, claimed.claimed_version, now);
      return claimed.claimed_version;
    });
  }

  async finish(keyId: string, version: number, claimedAt: number, now: number): Promise<boolean> {
    const finished = await this.session.atomic(() => {
      if (this.statements.finish.run({ keyId, version, claimedAt, now }).changes !== 1) return false;
      this.statements.advance.run({ keyId, version });
      return true;
    });
    // The key's current material version moved.
    if (finished) this.session.announce({ kind: 'key', keyId });
    return finished;
  }

  async rollBack(keyId: string, version: number): Promise<void> {
    await this.session.atomic(() => {
      this.statements.dropMaterial.run({ keyId, version });
      this.statements.release.run({ keyId, version });
    });
  }

  async claimedBefore(before: number): Promise<RotationClaim[]> {
    return this.statements.claimedBefore
      .all(before)
      .map((row) => ({ keyId: row.key_id, projectId: row.project_id, version: row.claimed_version, claimedAt: row.claimed_at }));
  }

  async due(now: number): Promise<RotationCandidate[]> {
    return this.statements.due.all(now).map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }

  async overBudget(budget: number): Promise<RotationCandidate[]> {
    return this.statements.overBudget.all(budget).map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }

  async mostSeals(): Promise<number> {
    return this.statements.mostSeals.get()?.seals ?? 0;
  }

  async addSeals(counts: readonly SealCount[]): Promise<void> {
    if (counts.length === 0) return;
    await this.session.atomic(() => {
      for (const { keyId, version, count } of counts) this.statements.addSeals.run({ keyId, version, count });
    });
  }

  async materials(keyId: string): Promise<MaterialUsage[]> {
    return this.statements.materials.all(keyId).map((row) => ({ version: row.version, createdAt: row.created_at, seals: row.seals }));
  }
}
