import type Database from 'better-sqlite3';
import { DuplicateAliasError, QuotaExceededError, type KeyRecord, type KeyState, type MaterialRef } from '../../domain/keys';
import type { KeyRepository, ReadOptions } from '../../domain/repositories';
import { KEY_EXISTS } from './key-exists';
import { keyRecord, keyState, type KeyRow } from '../rows';
import type { SqliteSession } from './session';
import { sqliteCode } from './sqlite-errors';

/**
 * Key metadata (migration 1). The HSM is the authority for key material; this table says which
 * keys exist, whose they are and what state they are in. A key is inserted invisible
 * (provisioned = 0) while its material is generated, and made visible after.
 */



function isUniqueViolation(error: unknown): boolean {
  return sqliteCode(error) === 'SQLITE_CONSTRAINT_UNIQUE';
}

export class SqliteKeyRepository implements KeyRepository {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(private readonly session: SqliteSession) {
    const db = (this.db = session.db);
    this.statements = {
      get: db.prepare<[string, string], KeyRow>('SELECT * FROM keys WHERE key_id = ? AND project_id = ? AND provisioned = 1'),
      insert: db.prepare(
        `INSERT INTO keys (key_id, project_id, key_alias, key_description, key_spec, key_usage, origin, key_state,
                           creation_date, scheduled_deletion_date, material_version, provisioned)
         VALUES (@keyId, @projectId, @alias, @description, @keySpec, @keyUsage, @origin, @state,
                 @creationDate, @scheduledDeletionDate, @materialVersion, 0)`,
      ),
      insertMaterial: db.prepare('INSERT INTO key_materials (key_id, version, created_at) VALUES (?, ?, ?)'),
      markProvisioned: db.prepare('UPDATE keys SET provisioned = 1 WHERE key_id = ? AND rolling_back = 0'),
      claimRollback: db.prepare('UPDATE keys SET rolling_back = 1 WHERE key_id = ? AND provisioned = 0'),
      remove: db.prepare('DELETE FROM keys WHERE key_id = ?'),
      count: db.prepare<[string, number], { n: number }>(`SELECT count(*) AS n FROM keys WHERE project_id = ? AND ${KEY_EXISTS}`),
      byState: db.prepare<[number], { key_state: string; n: number }>(
        `SELECT key_state, count(*) AS n FROM keys WHERE provisioned = 1 AND ${KEY_EXISTS} GROUP BY key_state`,
      ),
      byAlias: db.prepare<[string, string], KeyRow>('SELECT * FROM keys WHERE project_id = ? AND key_alias = ? AND provisioned = 1'),
      update: db.prepare(
        `UPDATE keys SET key_alias = @alias, key_description = @description, key_state = @state,
                         scheduled_deletion_date = @scheduledDeletionDate
         WHERE key_id = @keyId`,
      ),
      unprovisioned: db.prepare<[number], KeyRow>('SELECT * FROM keys WHERE provisioned = 0 AND creation_date <= ?'),
      dueForDeletion: db.prepare<[number], KeyRow>(`SELECT * FROM keys WHERE NOT ${KEY_EXISTS} AND provisioned = 1`),
      materials: db.prepare<[string], { version: number }>('SELECT version FROM key_materials WHERE key_id = ? ORDER BY version'),
      allMaterials: db.prepare<[], { key_id: string; version: number }>(
        // A version past material_version is a rotation under way (or interrupted): not yet the key's.
        // A key pending import (state 5) has no material in the token.
        "SELECT m.key_id, m.version FROM key_materials m JOIN keys k USING (key_id) WHERE k.provisioned = 1 AND k.key_state <> '5' AND m.version <= k.material_version",
      ),
    };
  }

  async insertProvisioning(record: KeyRecord, maxKeysInProject: number): Promise<void> {
    try {
      await this.session.atomic(() => {
        // Counted inside the write transaction, so concurrent creations cannot overshoot the quota.
        if (this.statements.count.get(record.projectId, record.creationDate)!.n >= maxKeysInProject) throw new QuotaExceededError();
        this.statements.insert.run(record);
        this.statements.insertMaterial.run(record.keyId, record.materialVersion, record.creationDate);
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new DuplicateAliasError();
      throw error;
    }
  }

  async markProvisioned(keyId: string): Promise<boolean> {
    const changed = await this.session.atomic(() => this.statements.markProvisioned.run(keyId).changes === 1);
    this.session.announce({ kind: 'key', keyId });
    return changed;
  }

  async claimRollback(keyId: string): Promise<boolean> {
    // Invisible either way: nothing for the other processes' caches to forget.
    return this.session.atomic(() => this.statements.claimRollback.run(keyId).changes === 1);
  }

  async remove(keyId: string): Promise<void> {
    await this.session.atomic(() => this.statements.remove.run(keyId));
    this.session.announce({ kind: 'key', keyId });
  }

  // SQLite's transactions (BEGIN IMMEDIATE) exclude every other writer already: `lock` needs nothing more.
  async get(projectId: string, keyId: string, _options?: ReadOptions): Promise<KeyRecord | undefined> {
    const row = this.statements.get.get(keyId, projectId);
    return row && keyRecord(row);
  }

  async getByAlias(projectId: string, alias: string): Promise<KeyRecord | undefined> {
    const row = this.statements.byAlias.get(projectId, alias);
    return row && keyRecord(row);
  }

  async update(record: KeyRecord): Promise<void> {
    try {
      await this.session.atomic(() => this.statements.update.run(record));
    } catch (error) {
      if (isUniqueViolation(error)) throw new DuplicateAliasError();
      throw error;
    }
    this.session.announce({ kind: 'key', keyId: record.keyId });
  }

  async countKeys(projectId: string, now: number): Promise<number> {
    return this.statements.count.get(projectId, now)!.n;
  }

  async countByState(now: number): Promise<Map<KeyState, number>> {
    return new Map(this.statements.byState.all(now).map((row) => [keyState(row.key_state), row.n]));
  }

  async list(projectId: string, options: { state?: KeyState; spec?: string; offset: number; limit: number; now: number }): Promise<{ records: KeyRecord[]; total: number }> {
    let where = `project_id = ? AND provisioned = 1 AND ${KEY_EXISTS}`;
    const params: Array<string | number> = [projectId, options.now];
    if (options.state) {
      where += ' AND key_state = ?';
      params.push(options.state);
    }
    if (options.spec) {
      where += ' AND key_spec = ?';
      params.push(options.spec);
    }
    const total = (this.db.prepare(`SELECT count(*) AS n FROM keys WHERE ${where}`).get(...params) as { n: number }).n;
    const rows = this.db
      .prepare(`SELECT * FROM keys WHERE ${where} ORDER BY creation_date, rowid LIMIT ? OFFSET ?`)
      .all(...params, options.limit, options.offset) as KeyRow[];
    return { records: rows.map(keyRecord), total };
  }

  async unprovisioned(before: number): Promise<KeyRecord[]> {
    return this.statements.unprovisioned.all(before).map(keyRecord);
  }

  async dueForDeletion(now: number): Promise<KeyRecord[]> {
    return this.statements.dueForDeletion.all(now).map(keyRecord);
  }

  async materialVersions(keyId: string): Promise<number[]> {
    return this.statements.materials.all(keyId).map((row) => row.version);
  }

  async allMaterials(): Promise<MaterialRef[]> {
    return this.statements.allMaterials.all().map((row) => ({ keyId: row.key_id, version: row.version }));
  }
}
