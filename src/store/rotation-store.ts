import type Database from 'better-sqlite3';
import type { KeyStore } from './key-store';

/**
 * Rotation settings, rotations under way and seal counts, beside the key records (same database).
 * A rotation is claimed by one conditional UPDATE, so that of several processes or instances
 * sharing the database exactly one performs it; the claim names the material version it makes,
 * whose key_materials row exists from the claim on (so that a deletion destroys that HSM object
 * too). Finishing the rotation moves the key's material_version in the same transaction.
 */

export const DEFAULT_ROTATION_INTERVAL_DAYS = 365;
const DAY_MS = 86_400_000;

/** Why a rotation happens; the claim's condition depends on it. */
export type RotationReason = 'on-demand' | 'scheduled' | 'budget';

export interface RotationState {
  readonly enabled: boolean;
  readonly intervalDays: number;
  /** When the next scheduled rotation is due (ms since the epoch); null while rotation is off. */
  readonly nextRotationAt: number | null;
  readonly lastRotationAt: number | null;
}

export interface MaterialUsage {
  readonly version: number;
  readonly createdAt: number;
  /** Encryptions under this version written to the database so far (the flushed count). */
  readonly seals: number;
}

/** A rotation under way: the version it makes and when it was claimed. */
export interface RotationClaim {
  readonly keyId: string;
  readonly projectId: string;
  readonly version: number;
  readonly claimedAt: number;
}

/** A key that may need a rotation now. */
export interface RotationCandidate {
  readonly keyId: string;
  readonly projectId: string;
}

export interface SealCount {
  readonly keyId: string;
  readonly version: number;
  readonly count: number;
}

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

export class RotationStore {
  private readonly statements;

  constructor(
    private readonly db: Database.Database,
    private readonly keys: KeyStore,
  ) {
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
         WHERE m.seals >= ? AND k.provisioned = 1 AND k.key_state = '2'`,
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

  /** A key's rotation settings; a key never configured has rotation off at the default interval. */
  state(keyId: string): RotationState {
    const row = this.statements.state.get(keyId);
    if (!row) return { enabled: false, intervalDays: DEFAULT_ROTATION_INTERVAL_DAYS, nextRotationAt: null, lastRotationAt: null };
    return { enabled: row.enabled === 1, intervalDays: row.interval_days, nextRotationAt: row.next_rotation_at, lastRotationAt: row.last_rotation_at };
  }

  /**
   * Reads a key's settings and writes `decide`'s in one write transaction (two requests cannot
   * both act on the same old state). `decide` throws to refuse.
   */
  update(keyId: string, decide: (current: RotationState) => Pick<RotationState, 'enabled' | 'intervalDays' | 'nextRotationAt'>): RotationState {
    return this.db.transaction(() => {
      this.statements.ensure.run(keyId);
      const current = this.state(keyId);
      const next = decide(current);
      this.statements.setSettings.run({ keyId, enabled: next.enabled ? 1 : 0, intervalDays: next.intervalDays, nextRotationAt: next.nextRotationAt });
      return { ...current, ...next };
    }).immediate();
  }

  /**
   * Claims the next rotation of a key, when `reason`'s condition holds and no rotation of it is
   * under way: returns the version it is to make (its key_materials row is written), or undefined.
   */
  claim(keyId: string, reason: RotationReason, now: number, budget: number): number | undefined {
    return this.db.transaction(() => {
      this.statements.ensure.run(keyId);
      const claimed = this.statements.claim.get({ keyId, reason, now, budget });
      if (!claimed) return undefined;
      this.statements.insertMaterial.run(keyId, claimed.claimed_version, now);
      return claimed.claimed_version;
    }).immediate();
  }

  /**
   * Makes a claimed version the key's current one. False when the claim is gone (reconciliation
   * took it for an interrupted rotation and rolled it back meanwhile).
   */
  finish(keyId: string, version: number, claimedAt: number, now: number): boolean {
    const finished = this.db.transaction(() => {
      if (this.statements.finish.run({ keyId, version, claimedAt, now }).changes !== 1) return false;
      this.statements.advance.run({ keyId, version });
      return true;
    }).immediate();
    this.keys.forget();
    return finished;
  }

  /** Forgets a claimed version whose HSM object is destroyed (or was never made), and releases the claim. */
  rollBack(keyId: string, version: number): void {
    this.db.transaction(() => {
      this.statements.dropMaterial.run({ keyId, version });
      this.statements.release.run({ keyId, version });
    }).immediate();
  }

  /** Rotations claimed at or before `before` that have not finished (a crash, or one still under way). */
  claimedBefore(before: number): RotationClaim[] {
    return this.statements.claimedBefore
      .all(before)
      .map((row) => ({ keyId: row.key_id, projectId: row.project_id, version: row.claimed_version, claimedAt: row.claimed_at }));
  }

  /** Enabled keys whose scheduled rotation is due at `now`. */
  due(now: number): RotationCandidate[] {
    return this.statements.due.all(now).map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }

  /** Enabled keys whose current version has sealed `budget` times or more. */
  overBudget(budget: number): RotationCandidate[] {
    return this.statements.overBudget.all(budget).map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }

  /** The most seals (flushed) under the current version of any enabled key: how near the budget the busiest key is. */
  mostSeals(): number {
    return this.statements.mostSeals.get()?.seals ?? 0;
  }

  /** Adds counted seals in one transaction (a version gone meanwhile is skipped). */
  addSeals(counts: readonly SealCount[]): void {
    if (counts.length === 0) return;
    this.db.transaction(() => {
      for (const { keyId, version, count } of counts) this.statements.addSeals.run({ keyId, version, count });
    }).immediate();
  }

  /** A key's material versions in use, oldest first, with their flushed seal counts. */
  materials(keyId: string): MaterialUsage[] {
    return this.statements.materials.all(keyId).map((row) => ({ version: row.version, createdAt: row.created_at, seals: row.seals }));
  }
}
