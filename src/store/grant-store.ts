import type Database from 'better-sqlite3';
import { KEY_EXISTS } from './key-store';

/**
 * Grants (database.ts, migration 3): each lets a principal use one key for the operations it
 * lists. A grant is deleted with its key (ON DELETE CASCADE); a grant whose key's deletion window
 * has ended is gone already, as its key is, before the sweep removes both.
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
        `INSERT INTO grants (grant_id, key_id, name, grantee_principal, grantee_principal_type, retiring_principal, issuing_principal, operations, creation_date)
         VALUES (@grantId, @keyId, @name, @granteePrincipal, @granteeType, @retiringPrincipal, @issuingPrincipal, @operations, @creationDate)`,
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
   * the key's record is gone.
   */
  insert(record: Omit<GrantRecord, 'projectId'>, maxPerKey: number): void {
    try {
      this.db.transaction(() => {
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

  /** False when there was no such grant. */
  remove(grantId: string): boolean {
    return this.statements.remove.run(grantId).changes === 1;
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
