import { AliasKeyGoneError, AliasNotHeldError, AliasQuotaExceededError, AliasTakenError, type AliasRecord } from '../../domain/aliases';
import type { AliasRepository } from '../../domain/repositories';
import { aliasRecord, type AliasRow } from '../rows';
import { KEY_EXISTS } from './key-exists';
import type { SqliteSession } from './session';
import { sqliteCode } from './sqlite-errors';

/**
 * Aliases (v2) in SQLite (migration 8); the semantics are AliasRepository's
 * (src/domain/repositories.ts). Each write is one BEGIN IMMEDIATE transaction (session.atomic), so
 * its checks and its write see no other writer in between, on any connection.
 */
export class SqliteAliasRepository implements AliasRepository {
  private readonly statements;

  constructor(private readonly session: SqliteSession) {
    const { db } = session;
    this.statements = {
      get: db.prepare<[string, string], AliasRow>('SELECT * FROM key_aliases WHERE project_id = ? AND alias = ?'),
      keyProject: db.prepare<[string], { project_id: string }>('SELECT project_id FROM keys WHERE key_id = ? AND provisioned = 1'),
      countForKey: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM key_aliases WHERE key_id = ?'),
      insert: db.prepare('INSERT INTO key_aliases (project_id, alias, key_id, create_time, update_time) VALUES (@projectId, @alias, @keyId, @createTime, @updateTime)'),
      move: db.prepare<[string, number, string, string]>('UPDATE key_aliases SET key_id = ?, update_time = ? WHERE project_id = ? AND alias = ?'),
      remove: db.prepare<[string, string]>('DELETE FROM key_aliases WHERE project_id = ? AND alias = ?'),
      list: db.prepare<[number, string, string | null, string | null, string | null, string | null, number], AliasRow>(
        `SELECT a.* FROM key_aliases a JOIN keys k ON k.key_id = a.key_id AND k.provisioned = 1 AND ${KEY_EXISTS}
         WHERE a.project_id = ? AND (? IS NULL OR a.key_id = ?) AND (? IS NULL OR a.alias > ?)
         ORDER BY a.alias LIMIT ?`,
      ),
    };
  }

  /** Throws unless `keyId` is a visible key of the project that holds fewer than `maxPerKey` aliases. */
  private checkRoom(projectId: string, keyId: string, maxPerKey: number): void {
    if (this.statements.keyProject.get(keyId)?.project_id !== projectId) throw new AliasKeyGoneError();
    if (this.statements.countForKey.get(keyId)!.n >= maxPerKey) throw new AliasQuotaExceededError();
  }

  async insert(record: AliasRecord, maxPerKey: number): Promise<void> {
    try {
      await this.session.atomic(() => {
        if (this.statements.get.get(record.projectId, record.alias)) throw new AliasTakenError();
        this.checkRoom(record.projectId, record.keyId, maxPerKey);
        this.statements.insert.run(record);
      });
    } catch (error) {
      // The backstops of the checks above (by code, not instanceof: sqlite-errors.ts).
      if (sqliteCode(error) === 'SQLITE_CONSTRAINT_PRIMARYKEY') throw new AliasTakenError();
      if (sqliteCode(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new AliasKeyGoneError();
      throw error;
    }
    this.session.announce({ kind: 'key', keyId: record.keyId });
  }

  async get(projectId: string, alias: string): Promise<AliasRecord | undefined> {
    const row = this.statements.get.get(projectId, alias);
    return row && aliasRecord(row);
  }

  async associate(projectId: string, alias: string, keyId: string, now: number, maxPerKey: number): Promise<{ previousKeyId: string; record: AliasRecord } | undefined> {
    const moved = await this.session.atomic(() => {
      const current = this.statements.get.get(projectId, alias);
      if (!current) return undefined;
      // Already the key's: nothing changes (not even its update time).
      if (current.key_id === keyId) return { previousKeyId: keyId, record: aliasRecord(current) };
      this.checkRoom(projectId, keyId, maxPerKey);
      this.statements.move.run(keyId, now, projectId, alias);
      return { previousKeyId: current.key_id, record: aliasRecord({ ...current, key_id: keyId, update_time: now }) };
    });
    if (moved && moved.previousKeyId !== keyId) {
      this.session.announce({ kind: 'key', keyId: moved.previousKeyId });
      this.session.announce({ kind: 'key', keyId });
    }
    return moved;
  }

  async remove(projectId: string, keyId: string, aliases: readonly string[]): Promise<void> {
    const unique = [...new Set(aliases)];
    await this.session.atomic(() => {
      const notHeld = unique.filter((alias) => this.statements.get.get(projectId, alias)?.key_id !== keyId);
      if (notHeld.length > 0) throw new AliasNotHeldError(notHeld);
      for (const alias of unique) this.statements.remove.run(projectId, alias);
    });
    this.session.announce({ kind: 'key', keyId });
  }

  async list(projectId: string, options: { keyId?: string; after?: string; limit: number; now: number }): Promise<AliasRecord[]> {
    const keyId = options.keyId ?? null;
    const after = options.after ?? null;
    return this.statements.list.all(options.now, projectId, keyId, keyId, after, after, options.limit).map(aliasRecord);
  }
}
