import { GrantKeyGoneError, GrantParentGoneError, GrantQuotaExceededError, type CascadedRemoval, type GrantPrincipal, type GrantRecord, type Page } from '../../domain/grants';
import type { GrantRepository } from '../../domain/repositories';
import { KEY_EXISTS } from './key-exists';
import { grantRecord, jsonStringList, type GrantRow } from '../rows';
import type { SqliteSession } from './session';
import { sqliteCode } from './sqlite-errors';

/**
 * Grants (migrations 3 and 5): each lets a principal use one key for the operations it lists. A
 * grant is deleted with its key (ON DELETE CASCADE); a grant whose key's deletion window has ended
 * is gone already, as its key is, before the sweep removes both. A grant made on another grant's
 * authority (its parent, on the same key) ends with it: removeWithDescendants.
 */

interface SqliteGrantRow extends GrantRow {
  /** JSON text. */
  operations: string;
}

function toRecord(row: SqliteGrantRow): GrantRecord {
  return grantRecord(row, jsonStringList(row.operations, 'grant\'s operations'));
}

/** Grants with their key's project, of keys that exist at the bound `now`. */
const VISIBLE = `SELECT g.*, k.project_id FROM grants g JOIN keys k ON k.key_id = g.key_id AND k.provisioned = 1 AND ${KEY_EXISTS}`;
const ORDER = 'ORDER BY g.creation_date, g.rowid';

export class SqliteGrantRepository implements GrantRepository {
  private readonly statements;

  constructor(private readonly session: SqliteSession) {
    const { db } = session;
    this.statements = {
      insert: db.prepare(
        `INSERT INTO grants (grant_id, key_id, name, grantee_principal, grantee_principal_type, retiring_principal, issuing_principal, operations, creation_date, parent_grant_id)
         VALUES (@grantId, @keyId, @name, @granteePrincipal, @granteeType, @retiringPrincipal, @issuingPrincipal, @operations, @creationDate, @parentGrantId)`,
      ),
      exists: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM grants WHERE grant_id = ?'),
      keyOf: db.prepare<[string], { key_id: string }>('SELECT key_id FROM grants WHERE grant_id = ?'),
      // Every grant made, directly or not, on the grant's authority, each with the grant it was made
      // on. UNION (not UNION ALL): even a cycle, which inserts cannot make, would end.
      descendants: db.prepare<[string], { grant_id: string; parent_grant_id: string }>(
        `WITH RECURSIVE made_on (grant_id, parent_grant_id) AS (
           SELECT grant_id, parent_grant_id FROM grants WHERE parent_grant_id = ?
           UNION
           SELECT g.grant_id, g.parent_grant_id FROM grants g JOIN made_on m ON g.parent_grant_id = m.grant_id
         )
         SELECT grant_id, parent_grant_id FROM made_on`,
      ),
      countForKey: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM grants WHERE key_id = ?'),
      get: db.prepare<[number, string, string], SqliteGrantRow>(`${VISIBLE} WHERE g.grant_id = ? AND k.project_id = ?`),
      remove: db.prepare<[string]>('DELETE FROM grants WHERE grant_id = ?'),
      forKey: db.prepare<[number, string, number, number], SqliteGrantRow>(`${VISIBLE} WHERE g.key_id = ? ${ORDER} LIMIT ? OFFSET ?`),
      totalForKey: db.prepare<[number, string], { n: number }>(`SELECT count(*) AS n FROM (${VISIBLE} WHERE g.key_id = ?)`),
      retirable: db.prepare<[number, string, number, number], SqliteGrantRow>(`${VISIBLE} WHERE g.retiring_principal = ? ${ORDER} LIMIT ? OFFSET ?`),
      totalRetirable: db.prepare<[number, string], { n: number }>(`SELECT count(*) AS n FROM (${VISIBLE} WHERE g.retiring_principal = ?)`),
      naming: db.prepare<[number, string, string, string, string, string], SqliteGrantRow>(
        `${VISIBLE} WHERE g.key_id = ? AND k.project_id = ?
           AND ((g.grantee_principal_type = 'user' AND g.grantee_principal = ?)
             OR (g.grantee_principal_type = 'domain' AND g.grantee_principal = ?)
             OR g.retiring_principal = ?) ${ORDER}`,
      ),
      mostOnAKey: db.prepare<[number, string], { n: number | null }>(
        `SELECT max(n) AS n FROM (SELECT count(*) AS n FROM (${VISIBLE} WHERE k.project_id = ?) GROUP BY key_id)`,
      ),
    };
  }

  async insert(record: Omit<GrantRecord, 'projectId'>, maxPerKey: number): Promise<void> {
    try {
      await this.session.atomic(() => {
        if (record.parentGrantId !== null && this.statements.exists.get(record.parentGrantId)!.n === 0) throw new GrantParentGoneError();
        if (this.statements.countForKey.get(record.keyId)!.n >= maxPerKey) throw new GrantQuotaExceededError();
        this.statements.insert.run({ ...record, operations: JSON.stringify(record.operations) });
      });
    } catch (error) {
      // By code, not instanceof (sqlite-errors.ts).
      if (sqliteCode(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY') throw new GrantKeyGoneError();
      throw error;
    }
    this.session.announce({ kind: 'key', keyId: record.keyId });
  }

  async get(projectId: string, grantId: string, now: number): Promise<GrantRecord | undefined> {
    const row = this.statements.get.get(now, grantId, projectId);
    return row && toRecord(row);
  }

  async removeWithDescendants(grantId: string): Promise<{ removed: boolean; cascaded: CascadedRemoval[] }> {
    const { keyId, ...result } = await this.session.atomic(() => {
      const keyId = this.statements.keyOf.get(grantId)?.key_id;
      const cascaded = this.statements.descendants.all(grantId).map((row) => ({ grantId: row.grant_id, parentGrantId: row.parent_grant_id }));
      const removed = this.statements.remove.run(grantId).changes === 1;
      // The descendants go by the foreign key's ON DELETE CASCADE too; deleted here by name so that
      // what was listed is what was removed, whatever the connection's foreign_keys setting.
      for (const child of cascaded) this.statements.remove.run(child.grantId);
      return { keyId, removed, cascaded };
    });
    if (keyId !== undefined) this.session.announce({ kind: 'key', keyId });
    return result;
  }

  async forKey(keyId: string, page: Page): Promise<{ records: GrantRecord[]; total: number }> {
    return {
      records: this.statements.forKey.all(page.now, keyId, page.limit, page.offset).map(toRecord),
      total: this.statements.totalForKey.get(page.now, keyId)!.n,
    };
  }

  async retirable(principalId: string, page: Page): Promise<{ records: GrantRecord[]; total: number }> {
    return {
      records: this.statements.retirable.all(page.now, principalId, page.limit, page.offset).map(toRecord),
      total: this.statements.totalRetirable.get(page.now, principalId)!.n,
    };
  }

  async naming(projectId: string, keyId: string, principal: GrantPrincipal, now: number): Promise<GrantRecord[]> {
    return this.statements.naming.all(now, keyId, projectId, principal.principalId, principal.projectId, principal.principalId).map(toRecord);
  }

  async mostOnAKey(projectId: string, now: number): Promise<number> {
    return this.statements.mostOnAKey.get(now, projectId)!.n ?? 0;
  }
}
