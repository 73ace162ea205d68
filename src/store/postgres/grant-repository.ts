import {
  GrantKeyGoneError,
  GrantParentGoneError,
  GrantQuotaExceededError,
  type CascadedRemoval,
  type GrantPrincipal,
  type GrantRecord,
  type Page,
} from '../../domain/grants';
import type { GrantRepository } from '../../domain/repositories';
import { isForeignKeyViolation } from './errors';
import type { Executor } from './executor';
import { keyExists } from './key-repository';
import { grantRecord, stringList, type GrantRow } from '../rows';

/** Grants in PostgreSQL (migrations 3 and 5); the semantics are GrantRepository's (src/domain/repositories.ts). */

interface PostgresGrantRow extends GrantRow {
  operations: string[];
}

function toRecord(row: PostgresGrantRow): GrantRecord {
  return grantRecord(row, stringList(row.operations, 'grant\'s operations'));
}

/** Grants with their key's project (and `seq`, the order of equal dates), of provisioned keys that exist at $1 (the deletion rule). */
const VISIBLE = `SELECT g.grant_id, g.key_id, k.project_id, g.name, g.grantee_principal, g.grantee_principal_type, g.retiring_principal,
       g.issuing_principal, g.operations, g.creation_date, g.parent_grant_id, g.seq
  FROM grants g JOIN keys k ON k.key_id = g.key_id AND k.provisioned AND ${keyExists(1)}`;
const ORDER = 'ORDER BY g.creation_date, g.seq';

export class PostgresGrantRepository implements GrantRepository {
  constructor(private readonly db: Executor) {}

  async insert(record: Omit<GrantRecord, 'projectId'>, maxPerKey: number): Promise<void> {
    try {
      await this.db.atomic(async (tx) => {
        // The key's row locked: grants of one key are counted and inserted one at a time, on every
        // instance. No row: the key is gone.
        const { rowCount } = await tx.query('SELECT 1 FROM keys WHERE key_id = $1 FOR UPDATE', [record.keyId]);
        if (!rowCount) throw new GrantKeyGoneError();
        if (record.parentGrantId !== null) {
          // Locked against its revocation until this grant commits (the foreign key would take the same lock).
          const parent = await tx.query('SELECT 1 FROM grants WHERE grant_id = $1 FOR KEY SHARE', [record.parentGrantId]);
          if (!parent.rowCount) throw new GrantParentGoneError();
        }
        const { rows } = await tx.query<{ n: number }>('SELECT count(*) AS n FROM grants WHERE key_id = $1', [record.keyId]);
        if (rows[0]!.n >= maxPerKey) throw new GrantQuotaExceededError();
        await tx.query(
          `INSERT INTO grants (grant_id, key_id, name, grantee_principal, grantee_principal_type, retiring_principal, issuing_principal, operations, creation_date, parent_grant_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [
            record.grantId,
            record.keyId,
            record.name,
            record.granteePrincipal,
            record.granteeType,
            record.retiringPrincipal,
            record.issuingPrincipal,
            [...record.operations],
            record.creationDate,
            record.parentGrantId,
          ],
        );
        tx.changed(record.keyId);
      });
    } catch (error) {
      // The backstops of the checks above.
      if (isForeignKeyViolation(error, 'grants_key_fk')) throw new GrantKeyGoneError();
      if (isForeignKeyViolation(error, 'grants_parent_fk')) throw new GrantParentGoneError();
      throw error;
    }
  }

  async get(projectId: string, grantId: string, now: number): Promise<GrantRecord | undefined> {
    const { rows } = await this.db.query<PostgresGrantRow>(`${VISIBLE} WHERE g.grant_id = $2 AND k.project_id = $3`, [now, grantId, projectId]);
    return rows[0] && toRecord(rows[0]);
  }

  removeWithDescendants(grantId: string): Promise<{ removed: boolean; cascaded: CascadedRemoval[] }> {
    return this.db.atomic(async (tx) => {
      // The grant's row locked first, so that a grant made on its authority meanwhile either
      // committed before (and is found below) or waits and then finds its parent gone.
      const target = await tx.query<{ key_id: string }>('SELECT key_id FROM grants WHERE grant_id = $1 FOR UPDATE', [grantId]);
      if (!target.rowCount) return { removed: false, cascaded: [] };
      // UNION (not UNION ALL): even a cycle, which inserts cannot make, would end.
      const { rows } = await tx.query<{ grant_id: string; parent_grant_id: string }>(
        `WITH RECURSIVE made_on (grant_id, parent_grant_id) AS (
           SELECT grant_id, parent_grant_id FROM grants WHERE parent_grant_id = $1
           UNION
           SELECT g.grant_id, g.parent_grant_id FROM grants g JOIN made_on m ON g.parent_grant_id = m.grant_id
         )
         SELECT grant_id, parent_grant_id FROM made_on`,
        [grantId],
      );
      const cascaded = rows.map((row) => ({ grantId: row.grant_id, parentGrantId: row.parent_grant_id }));
      // Deleted by name, so that what was listed is what was removed (the foreign key's cascade is the backstop).
      await tx.query('DELETE FROM grants WHERE grant_id = ANY($1::text[])', [[grantId, ...cascaded.map((child) => child.grantId)]]);
      tx.changed(target.rows[0]!.key_id);
      return { removed: true, cascaded };
    });
  }

  async forKey(keyId: string, page: Page): Promise<{ records: GrantRecord[]; total: number }> {
    return this.page(`g.key_id = $2`, [page.now, keyId], page);
  }

  async retirable(principalId: string, page: Page): Promise<{ records: GrantRecord[]; total: number }> {
    return this.page(`g.retiring_principal = $2`, [page.now, principalId], page);
  }

  private async page(where: string, values: unknown[], page: Page): Promise<{ records: GrantRecord[]; total: number }> {
    const { rows } = await this.db.query<PostgresGrantRow & { total: number }>(
      // One statement, so the page and its total come from the same snapshot.
      `SELECT v.*, count(*) OVER () AS total FROM (${VISIBLE} WHERE ${where}) v ORDER BY v.creation_date, v.seq LIMIT $3 OFFSET $4`,
      [...values, page.limit, page.offset],
    );
    if (rows.length > 0 || page.offset === 0) return { records: rows.map(toRecord), total: rows[0]?.total ?? 0 };
    const { rows: counted } = await this.db.query<{ n: number }>(`SELECT count(*) AS n FROM (${VISIBLE} WHERE ${where}) v`, values);
    return { records: [], total: counted[0]!.n };
  }

  async naming(projectId: string, keyId: string, principal: GrantPrincipal, now: number): Promise<GrantRecord[]> {
    const { rows } = await this.db.query<PostgresGrantRow>(
      `${VISIBLE} WHERE g.key_id = $2 AND k.project_id = $3
         AND ((g.grantee_principal_type = 'user' AND g.grantee_principal = $4)
           OR (g.grantee_principal_type = 'domain' AND g.grantee_principal = $5)
           OR g.retiring_principal = $4) ${ORDER}`,
      [now, keyId, projectId, principal.principalId, principal.projectId],
    );
    return rows.map(toRecord);
  }

  async mostOnAKey(projectId: string, now: number): Promise<number> {
    const { rows } = await this.db.query<{ n: number | null }>(
      `SELECT max(n) AS n FROM (SELECT count(*) AS n FROM (${VISIBLE} WHERE k.project_id = $2) v GROUP BY v.key_id) per_key`,
      [now, projectId],
    );
    return rows[0]?.n ?? 0;
  }
}
