import type Database from 'better-sqlite3';
import { ChangeCursor, type ChangeWatch } from './change-watch';
import { sqliteCode } from './sqlite/sqlite-errors';

/**
 * Key metadata in an embedded SQLite database (WAL, so that readers never wait for the writer and
 * several processes may share one data directory). The HSM is the authority for key material; this
 * store says which keys exist, whose they are and what state they are in.
 */

/** key_state as the API spells it: 1 pending activation, 2 enabled, 3 disabled, 4 pending deletion, 5 pending import. */
export type KeyState = '1' | '2' | '3' | '4' | '5';

export interface KeyRecord {
  readonly keyId: string;
  readonly projectId: string;
  readonly alias: string;
  readonly description: string;
  readonly keySpec: string;
  readonly keyUsage: string;
  readonly origin: string;
  readonly state: KeyState;
  /** Milliseconds since the epoch. */
  readonly creationDate: number;
  /** When the key material will be destroyed (state 4 only), in milliseconds since the epoch. */
  readonly scheduledDeletionDate: number | null;
  /** The material version new data keys are encrypted under. */
  readonly materialVersion: number;
}

/** Columns a state transition may change. */
export type KeyUpdate = Partial<Pick<KeyRecord, 'alias' | 'description' | 'state' | 'scheduledDeletionDate'>>;

export class QuotaExceededError extends Error {
  constructor() {
    super('the project has as many keys as it may');
    this.name = 'QuotaExceededError';
  }
}

export class DuplicateAliasError extends Error {
  constructor() {
    super('alias already used in this project');
    this.name = 'DuplicateAliasError';
  }
}

interface KeyRow {
  key_id: string;
  project_id: string;
  key_alias: string;
  key_description: string;
  key_spec: string;
  key_usage: string;
  origin: string;
  key_state: KeyState;
  creation_date: number;
  scheduled_deletion_date: number | null;
  material_version: number;
}

/** A key still exists unless its deletion window has ended (bound parameter: now, in ms). */
export const KEY_EXISTS = "NOT (key_state = '4' AND scheduled_deletion_date <= ?)";

function toRecord(row: KeyRow): KeyRecord {
  return {
    keyId: row.key_id,
    projectId: row.project_id,
    alias: row.key_alias,
    description: row.key_description,
    keySpec: row.key_spec,
    keyUsage: row.key_usage,
    origin: row.origin,
    state: row.key_state,
    creationDate: row.creation_date,
    scheduledDeletionDate: row.scheduled_deletion_date,
    materialVersion: row.material_version,
  };
}

function isUniqueViolation(error: unknown): boolean {
  return sqliteCode(error) === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class KeyStore {
  private readonly db: Database.Database;
  private readonly statements;
  /**
   * Visible key records by project and id: every data key request reads one. Cleared by this
   * store's own writes and whenever another process has written to the database.
   */
  private readonly cache = new Map<string, KeyRecord>();
  private readonly watch: ChangeCursor;

  constructor(db: Database.Database, changes: ChangeWatch) {
    this.db = db;
    this.watch = new ChangeCursor(changes);
    this.statements = {
      get: this.db.prepare<[string, string], KeyRow>('SELECT * FROM keys WHERE key_id = ? AND project_id = ? AND provisioned = 1'),
      insert: this.db.prepare(
        `INSERT INTO keys (key_id, project_id, key_alias, key_description, key_spec, key_usage, origin, key_state,
                           creation_date, scheduled_deletion_date, material_version, provisioned)
         VALUES (@keyId, @projectId, @alias, @description, @keySpec, @keyUsage, @origin, @state,
                 @creationDate, @scheduledDeletionDate, @materialVersion, 0)`,
      ),
      insertMaterial: this.db.prepare('INSERT INTO key_materials (key_id, version, created_at) VALUES (?, ?, ?)'),
      markProvisioned: this.db.prepare('UPDATE keys SET provisioned = 1 WHERE key_id = ?'),
      remove: this.db.prepare('DELETE FROM keys WHERE key_id = ?'),
      count: this.db.prepare<[string, number], { n: number }>(`SELECT count(*) AS n FROM keys WHERE project_id = ? AND ${KEY_EXISTS}`),
      byState: this.db.prepare<[number], { key_state: KeyState; n: number }>(
        `SELECT key_state, count(*) AS n FROM keys WHERE provisioned = 1 AND ${KEY_EXISTS} GROUP BY key_state`,
      ),
      byAlias: this.db.prepare<[string, string], KeyRow>('SELECT * FROM keys WHERE project_id = ? AND key_alias = ? AND provisioned = 1'),
      update: this.db.prepare(
        `UPDATE keys SET key_alias = @alias, key_description = @description, key_state = @state,
                         scheduled_deletion_date = @scheduledDeletionDate
         WHERE key_id = @keyId`,
      ),
      unprovisioned: this.db.prepare<[number], KeyRow>('SELECT * FROM keys WHERE provisioned = 0 AND creation_date <= ?'),
      dueForDeletion: this.db.prepare<[number], KeyRow>(
        "SELECT * FROM keys WHERE key_state = '4' AND scheduled_deletion_date <= ? AND provisioned = 1",
      ),
      materials: this.db.prepare<[string], { version: number }>('SELECT version FROM key_materials WHERE key_id = ? ORDER BY version'),
      allMaterials: this.db.prepare<[], { key_id: string; version: number }>(
        // A version past material_version is a rotation under way (or interrupted): not yet the key's.
        'SELECT m.key_id, m.version FROM key_materials m JOIN keys k USING (key_id) WHERE k.provisioned = 1 AND m.version <= k.material_version',
      ),
    };
  }

  /**
   * Records a key whose HSM material is about to be generated. It stays invisible until
   * {@link markProvisioned}. Throws {@link DuplicateAliasError} or {@link QuotaExceededError}.
   */
  insertProvisioning(record: KeyRecord, maxKeysInProject: number): void {
    try {
      this.db.transaction(() => {
        // Counted inside the write transaction, so concurrent creations cannot overshoot the quota.
        if (this.countKeys(record.projectId, record.creationDate) >= maxKeysInProject) throw new QuotaExceededError();
        this.statements.insert.run(record);
        this.statements.insertMaterial.run(record.keyId, record.materialVersion, record.creationDate);
      }).immediate();
    } catch (error) {
      if (isUniqueViolation(error)) throw new DuplicateAliasError();
      throw error;
    }
  }

  /** Makes a new key visible. False when its record is gone (reconciliation rolled it back meanwhile). */
  markProvisioned(keyId: string): boolean {
    const changed = this.statements.markProvisioned.run(keyId).changes === 1;
    this.written();
    return changed;
  }

  /** Forgets a key and its material versions. */
  remove(keyId: string): void {
    this.statements.remove.run(keyId);
    this.written();
  }

  get(projectId: string, keyId: string): KeyRecord | undefined {
    if (this.watch.changedElsewhere()) this.cache.clear();
    const cacheKey = `${projectId}/${keyId}`;
    const cached = this.cache.get(cacheKey);
    if (cached) return cached;
    const record = this.read(projectId, keyId);
    if (record) this.cache.set(cacheKey, record);
    return record;
  }

  private read(projectId: string, keyId: string): KeyRecord | undefined {
    const row = this.statements.get.get(keyId, projectId);
    return row && toRecord(row);
  }

  /** Drops the cached records: for the rotation store, whose commits move material_version. */
  forget(): void {
    this.written();
  }

  /** Every write goes through here: the cache must never outlive what it copied. */
  private written(): void {
    this.cache.clear();
  }

  /** Keys of a project that exist at `now` (creations under way count: they hold their place). */
  countKeys(projectId: string, now: number): number {
    return this.statements.count.get(projectId, now)!.n;
  }

  /** Keys of every project that exist at `now`, by state (creations under way not counted): the metrics read it. */
  countByState(now: number): Map<KeyState, number> {
    return new Map(this.statements.byState.all(now).map((row) => [row.key_state, row.n]));
  }

  /** The visible key holding `alias` in a project, whatever its state. */
  getByAlias(projectId: string, alias: string): KeyRecord | undefined {
    const row = this.statements.byAlias.get(projectId, alias);
    return row && toRecord(row);
  }

  /** One page of a project's keys that exist at `now`, oldest first, and how many match in all. */
  list(projectId: string, options: { state?: KeyState; offset: number; limit: number; now: number }): { records: KeyRecord[]; total: number } {
    let where = `project_id = ? AND provisioned = 1 AND ${KEY_EXISTS}`;
    const params: Array<string | number> = [projectId, options.now];
    if (options.state) {
      where += ' AND key_state = ?';
      params.push(options.state);
    }
    const total = (this.db.prepare(`SELECT count(*) AS n FROM keys WHERE ${where}`).get(...params) as { n: number }).n;
    const rows = this.db
      .prepare(`SELECT * FROM keys WHERE ${where} ORDER BY creation_date, rowid LIMIT ? OFFSET ?`)
      .all(...params, options.limit, options.offset) as KeyRow[];
    return { records: rows.map(toRecord), total };
  }

  /**
   * Reads a key and applies `decide(record)`'s update in one write transaction, so that two
   * requests (or two processes) cannot both act on the same old state. `decide` throws to refuse.
   * Throws {@link DuplicateAliasError} when the update takes an alias already in use.
   */
  transition(projectId: string, keyId: string, decide: (record: KeyRecord | undefined) => KeyUpdate): KeyRecord {
    try {
      return this.db.transaction(() => {
        // Read inside the write transaction, never from the cache: another process may have moved on.
        const current = this.read(projectId, keyId);
        const update = decide(current);
        if (!current) throw new Error('decide() must refuse a missing key');
        const next: KeyRecord = { ...current, ...update };
        this.statements.update.run(next);
        this.written();
        return next;
      }).immediate();
    } catch (error) {
      if (isUniqueViolation(error)) throw new DuplicateAliasError();
      throw error;
    }
  }

  /** Keys whose creation started at or before `before` and never finished (a crash or an HSM failure). */
  unprovisioned(before: number): KeyRecord[] {
    return this.statements.unprovisioned.all(before).map(toRecord);
  }

  /** Keys pending deletion whose window has ended at `now`. */
  dueForDeletion(now: number): KeyRecord[] {
    return this.statements.dueForDeletion.all(now).map(toRecord);
  }

  /** The material versions of one key. */
  materialVersions(keyId: string): number[] {
    return this.statements.materials.all(keyId).map((row) => row.version);
  }

  /** Every material version of every visible key, for reconciliation with the token. */
  allMaterials(): Array<{ keyId: string; version: number }> {
    return this.statements.allMaterials.all().map((row) => ({ keyId: row.key_id, version: row.version }));
  }
}
