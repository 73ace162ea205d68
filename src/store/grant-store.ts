import type Database from 'better-sqlite3';
import { KEY_EXISTS } from './key-store';

/**
 * Grants (database.ts, migrations 3 and 5): each lets a principal use one key for the operations it
 * lists. A grant is deleted with its key (ON DELETE CASCADE); a grant whose key's deletion window
 * has ended is gone already, as its key is, before the sweep removes both. A grant made on another
 * grant's authority (its parent, on the same key) ends with it: removeWithDescendants.
 */

export type GranteeType = 'user' | 'domain';

export interface GrantRecord {
  /** 64 lower-case hex digits. */
  readonly grantId: string;
  readonly keyId: string;
  /** The key's project. */
  readonly projectId: string;
  readonly name: string;
  /** A principal id ('user'), or a project id ('domain': every credential of that project). */
  readonly granteePrincipal: string;
  readonly granteeType: GranteeType;
  readonly retiringPrincipal: string | null;
  readonly issuingPrincipal: string;
  readonly operations: readonly string[];
  /** Milliseconds since the epoch. */
  readonly creationDate: number;
  /** The grant whose create-grant allowed this one; null when the key's administrator made it (or it predates migration 5). */
  readonly parentGrantId: string | null;
}

/** A grant removed because the grant it was made on (`parentGrantId`) was removed. */
export interface CascadedRemoval {
  readonly grantId: string;
  readonly parentGrantId: string;
}

/** Who asks, as grants name principals: a principal id, and the project its credential belongs to. */
export interface GrantPrincipal {
  readonly principalId: string;
  readonly projectId: string;
}

export class GrantQuotaExceededError extends Error {
  constructor() {
    super('the key has as many grants as it may');
    this.name = 'GrantQuotaExceededError';
  }
}

/** The grant whose authority a new grant was made on was removed between the check and the insert. */
export class GrantParentGoneError extends Error {
  constructor() {
    super('the grant that allowed the new grant no longer exists');
    this.name = 'GrantParentGoneError';
  }
}

/** The key was removed between the check and the insert. */
export class GrantKeyGoneError extends Error {
  constructor() {
    super('the key of the grant no longer exists');
    this.name = 'GrantKeyGoneError';
  }
}

interface GrantRow {
  grant_id: string;
  key_id: string;
  project_id: string;
  name: string;
  grantee_principal: string;
  grantee_principal_type: GranteeType;
  retiring_principal: string | null;
  issuing_principal: string;
  operations: string;
  creation_date: number;
  parent_grant_id: string | null;
}

function toRecord(row: GrantRow): GrantRecord {
  return {
    grantId: row.grant_id,
    keyId: row.key_id,
    projectId: row.project_id,
    name: row.name,
    granteePrincipal: row.grantee_principal,
    granteeType: row.grantee_principal_type,
    retiringPrincipal: row.retiring_principal,
    issuingPrincipal: row.issuing_principal,
    operations: JSON.parse(row.operations) as string[],
    creationDate: row.creation_date,
    parentGrantId: row.parent_grant_id,
  };
}

function isForeignKeyViolation(error: unknown): boolean {
  // By code, not instanceof (see key-store.ts).
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

/**
 * Grants with their key's project, of keys that exist at the bound `now` (KEY_EXISTS names the
 * keys table's columns, which grants does not have).
 */
const VISIBLE = `SELECT g.*, k.project_id FROM grants g JOIN keys k ON k.key_id = g.key_id AND k.provisioned = 1 AND ${KEY_EXISTS}`;
const ORDER = 'ORDER BY g.creation_date, g.rowid';

export interface Page {
  readonly offset: number;
  readonly limit: number;
  readonly now: number;
}

export class GrantStore {
  private readonly db: Database.Database;
  private readonly statements;

  constructor(db: Database.Database) {
    this.db = db;
    this.statements = {
      insert: db.prepare(
        `INSERT INTO grants (grant_id, key_id, name, grantee_principal, grantee_principal_type, retiring_principal, issuing_principal, operations, creation_date, parent_grant_id)
         VALUES (@grantId, @keyId, @name, @granteePrincipal, @granteeType, @retiringPrincipal, @issuingPrincipal, @operations, @creationDate, @parentGrantId)`,
      ),
      exists: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM grants WHERE grant_id = ?'),
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
      get: db.prepare<[number, string, string], GrantRow>(`${VISIBLE} WHERE g.grant_id = ? AND k.project_id = ?`),
      remove: db.prepare<[string]>('DELETE FROM grants WHERE grant_id = ?'),
      forKey: db.prepare<[number, string, number, number], GrantRow>(`${VISIBLE} WHERE g.key_id = ? ${ORDER} LIMIT ? OFFSET ?`),
      totalForKey: db.prepare<[number, string], { n: number }>(`SELECT count(*) AS n FROM (${VISIBLE} WHERE g.key_id = ?)`),
      retirable: db.prepare<[number, string, number, number], GrantRow>(`${VISIBLE} WHERE g.retiring_principal = ? ${ORDER} LIMIT ? OFFSET ?`),
      totalRetirable: db.prepare<[number, string], { n: number }>(`SELECT count(*) AS n FROM (${VISIBLE} WHERE g.retiring_principal = ?)`),
      naming: db.prepare<[number, string, string, string, string, string], GrantRow>(
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

  /**
   * Records a grant unless its key already holds `maxPerKey` (GrantQuotaExceededError), counted in
   * the write transaction so that concurrent creations cannot overshoot. GrantKeyGoneError when
   * the key's record is gone; GrantParentGoneError when the grant it is made on is (revoked
   * meanwhile: the new grant must not outlive it).
   */
  insert(record: Omit<GrantRecord, 'projectId'>, maxPerKey: number): void {
    try {
      this.db.transaction(() => {
        if (record.parentGrantId !== null && this.statements.exists.get(record.parentGrantId)!.n === 0) throw new GrantParentGoneError();
        if (this.statements.countForKey.get(record.keyId)!.n >= maxPerKey) throw new GrantQuotaExceededError();
        this.statements.insert.run({ ...record, operations: JSON.stringify(record.operations) });
      }).immediate();
    } catch (error) {
      if (isForeignKeyViolation(error)) throw new GrantKeyGoneError();
      throw error;
    }
  }

  /** A grant on a key of `projectId` that exists at `now`. */
  get(projectId: string, grantId: string, now: number): GrantRecord | undefined {
    const row = this.statements.get.get(now, grantId, projectId);
    return row && toRecord(row);
  }

  /**
   * Removes a grant and every grant made on its authority, recursively, in one transaction: a
   * grant never outlives the grant it was made on. Returns the grants removed with it, each with
   * the grant it was made on (for their audit records); `removed` is false when the grant was gone
   * already (revoked or retired by another request).
   */
  removeWithDescendants(grantId: string): { removed: boolean; cascaded: CascadedRemoval[] } {
    return this.db.transaction(() => {
      const cascaded = this.statements.descendants.all(grantId).map((row) => ({ grantId: row.grant_id, parentGrantId: row.parent_grant_id }));
      const removed = this.statements.remove.run(grantId).changes === 1;
      // The descendants go by the foreign key's ON DELETE CASCADE too; deleted here by name so that
      // what was listed is what was removed, whatever the connection's foreign_keys setting.
      for (const child of cascaded) this.statements.remove.run(child.grantId);
      return { removed, cascaded };
    }).immediate();
  }

  /** One page of a key's grants, oldest first, and how many it has. */
  forKey(keyId: string, page: Page): { records: GrantRecord[]; total: number } {
    return {
      records: this.statements.forKey.all(page.now, keyId, page.limit, page.offset).map(toRecord),
      total: this.statements.totalForKey.get(page.now, keyId)!.n,
    };
  }

  /** One page of the grants, on keys of any project, that name `principalId` as retiring principal. */
  retirable(principalId: string, page: Page): { records: GrantRecord[]; total: number } {
    return {
      records: this.statements.retirable.all(page.now, principalId, page.limit, page.offset).map(toRecord),
      total: this.statements.totalRetirable.get(page.now, principalId)!.n,
    };
  }

  /** The grants on a key of `projectId` that name `principal`, as grantee or as retiring principal. */
  naming(projectId: string, keyId: string, principal: GrantPrincipal, now: number): GrantRecord[] {
    return this.statements.naming
      .all(now, keyId, projectId, principal.principalId, principal.projectId, principal.principalId)
      .map(toRecord);
  }

  /** The most grants any one key of the project has (what the per-key quota is measured against). */
  mostOnAKey(projectId: string, now: number): number {
    return this.statements.mostOnAKey.get(now, projectId)!.n ?? 0;
  }
}
