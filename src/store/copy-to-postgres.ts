import { existsSync } from 'node:fs';
import type Database from 'better-sqlite3';
import type { PoolClient } from 'pg';
import type { PostgresDatabaseConfig } from '../config';
import { createPool } from './postgres/connection';
import { guarded } from './postgres/errors';
import { migrate } from './postgres/migrations';
import { openDatabase } from './sqlite/database';

/**
 * `kms store copy --to postgres://…`: the embedded store's rows copied, as they are, into an empty
 * PostgreSQL database, for a move off the embedded store to several instances. Rows are read from
 * SQLite in one read transaction (a consistent snapshot, even beside a running service) and
 * written to PostgreSQL in one transaction, table by table in an order the foreign keys accept and
 * in rowid order (so that PostgreSQL's `seq` orders rows of equal dates as SQLite's rowid did);
 * each table's count is checked before the COMMIT, so the copy is whole or absent. A target whose
 * tables hold any row is refused, checked under a lock that keeps writers out until the copy ends.
 * Job leases are not copied: they are the running instances' own, and end with them.
 */

/** The tables copied, in the order they are written (parents before the rows that name them). */
export const COPIED_TABLES = ['keys', 'key_materials', 'key_rotation', 'key_imports', 'grants', 'key_aliases', 'key_tags', 'credentials', 'audit_checkpoints'] as const;
export type CopiedTable = (typeof COPIED_TABLES)[number];
export type CopyCounts = Record<CopiedTable, number>;

/** The target already holds rows: nothing was written. */
export class TargetNotEmptyError extends Error {
  constructor(readonly counts: CopyCounts) {
    super(`the target database is not empty (${describeCounts(counts)}): copy only into an empty database`);
    this.name = 'TargetNotEmptyError';
  }
}

function describeCounts(counts: CopyCounts): string {
  return COPIED_TABLES.filter((table) => counts[table] > 0)
    .map((table) => `${table}: ${counts[table]}`)
    .join(', ');
}

/** How one table's rows are read from SQLite and written to PostgreSQL: the columns, each with its PostgreSQL array type for unnest. */
interface TableCopy {
  readonly columns: readonly (readonly [name: string, type: string])[];
}

/** SQLite's 0/1 flags are PostgreSQL's booleans; its JSON arrays of names, PostgreSQL's TEXT[] (converted on the server). */
export const TABLE_COPIES: Readonly<Record<CopiedTable, TableCopy>> = {
  keys: {
    columns: [
      ['key_id', 'text'],
      ['project_id', 'text'],
      ['key_alias', 'text'],
      ['key_description', 'text'],
      ['key_spec', 'text'],
      ['key_usage', 'text'],
      ['origin', 'text'],
      ['key_state', 'text'],
      ['creation_date', 'bigint'],
      ['scheduled_deletion_date', 'bigint'],
      ['material_version', 'integer'],
      ['provisioned', 'boolean'],
      ['rolling_back', 'boolean'],
    ],
  },
  key_materials: {
    columns: [
      ['key_id', 'text'],
      ['version', 'integer'],
      ['created_at', 'bigint'],
      ['seals', 'bigint'],
    ],
  },
  key_rotation: {
    columns: [
      ['key_id', 'text'],
      ['enabled', 'boolean'],
      ['interval_days', 'integer'],
      ['next_rotation_at', 'bigint'],
      ['last_rotation_at', 'bigint'],
      ['claimed_at', 'bigint'],
      ['claimed_version', 'integer'],
    ],
  },
  key_imports: {
    columns: [
      ['key_id', 'text'],
      ['wrapping_expires_at', 'bigint'],
      ['fingerprint', 'bytea'],
      ['imported', 'boolean'],
      ['material_expires_at', 'bigint'],
    ],
  },
  grants: {
    columns: [
      ['grant_id', 'text'],
      ['key_id', 'text'],
      ['name', 'text'],
      ['grantee_principal', 'text'],
      ['grantee_principal_type', 'text'],
      ['retiring_principal', 'text'],
      ['issuing_principal', 'text'],
      ['operations', 'json'],
      ['creation_date', 'bigint'],
      ['parent_grant_id', 'text'],
    ],
  },
  key_aliases: {
    columns: [
      ['project_id', 'text'],
      ['alias', 'text'],
      ['key_id', 'text'],
      ['create_time', 'bigint'],
      ['update_time', 'bigint'],
    ],
  },
  key_tags: {
    columns: [
      ['key_id', 'text'],
      ['tag_key', 'text'],
      ['tag_value', 'text'],
    ],
  },
  credentials: {
    columns: [
      ['id', 'text'],
      ['kind', 'text'],
      ['project_id', 'text'],
      ['actions', 'json'],
      ['description', 'text'],
      ['sealed_secret', 'bytea'],
      ['token_hash', 'text'],
      ['enabled', 'boolean'],
      ['created_at', 'bigint'],
      ['expires_at', 'bigint'],
    ],
  },
  audit_checkpoints: {
    columns: [
      ['instance', 'text'],
      ['records', 'bigint'],
      ['head', 'text'],
      ['at', 'bigint'],
    ],
  },
};

/** Rows per INSERT: one round trip per batch, parameters well within PostgreSQL's limits. */
const BATCH = 1000;

type Row = Record<string, unknown>;

/** A value as PostgreSQL takes it: SQLite's integer flags as booleans, its integers (read as bigint, exactly) as decimal text. */
function toTarget(value: unknown, type: string): unknown {
  if (value === null || value === undefined) return null;
  if (type === 'boolean') return value === 1n;
  if (typeof value === 'bigint') return value.toString();
  return value;
}

/** Every copied table's rows, in rowid order, read in one SQLite read transaction. */
function readSource(db: Database.Database): Record<CopiedTable, Row[]> {
  const read = db.transaction(() => {
    const rows = {} as Record<CopiedTable, Row[]>;
    for (const table of COPIED_TABLES) {
      const columns = TABLE_COPIES[table].columns.map(([name]) => name).join(', ');
      rows[table] = db.prepare(`SELECT ${columns} FROM ${table} ORDER BY rowid`).all() as Row[];
    }
    return rows;
  });
  return read();
}

async function countTarget(client: PoolClient): Promise<CopyCounts> {
  const counts = {} as CopyCounts;
  for (const table of COPIED_TABLES) {
    const { rows } = await client.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`);
    counts[table] = rows[0]!.n;
  }
  return counts;
}

/** INSERT … SELECT FROM unnest(one array per column) WITH ORDINALITY, in the rows' order. */
async function insertRows(client: PoolClient, table: CopiedTable, rows: readonly Row[]): Promise<void> {
  const { columns } = TABLE_COPIES[table];
  const names = columns.map(([name]) => name);
  // JSON arrays travel as text and become TEXT[] on the server.
  const arrayTypes = columns.map(([, type]) => (type === 'json' ? 'text' : type));
  const selected = columns.map(([name, type]) => (type === 'json' ? `ARRAY(SELECT json_array_elements_text(u.${name}::json))` : `u.${name}`));
  const sql = `INSERT INTO ${table} (${names.join(', ')})
    SELECT ${selected.join(', ')}
      FROM unnest(${arrayTypes.map((type, index) => `$${index + 1}::${type}[]`).join(', ')}) WITH ORDINALITY AS u (${names.join(', ')}, ord)
     ORDER BY u.ord`;
  for (let start = 0; start < rows.length; start += BATCH) {
    const batch = rows.slice(start, start + BATCH);
    await client.query(
      sql,
      columns.map(([name, type]) => batch.map((row) => toTarget(row[name], type))),
    );
  }
}

/**
 * Copies the embedded store at `sourceFile` (migrated to this release's schema first, as a start
 * of the service would) into the PostgreSQL database `target` (its schema made, or migrated, first).
 * Returns how many rows each table holds now. Throws TargetNotEmptyError when the target holds any
 * row, and an Error when a count does not match (nothing is then written). `beforeCommit` is told
 * the counts once they are checked; if it throws, the copy is rolled back.
 */
export async function copyToPostgres(sourceFile: string, target: PostgresDatabaseConfig, beforeCommit: (counts: CopyCounts) => void = () => undefined): Promise<CopyCounts> {
  if (!existsSync(sourceFile)) throw new Error(`no embedded store at ${sourceFile}: nothing to copy`);
  const source = openDatabase(sourceFile);
  let rows: Record<CopiedTable, Row[]>;
  try {
    // Integers as bigint: copied exactly, whatever their size.
    source.defaultSafeIntegers(true);
    rows = readSource(source);
  } finally {
    source.close();
  }

  const pool = createPool({ ...target, poolSize: 1 });
  // An idle connection's error must not end the command; the next call reports it.
  pool.on('error', () => undefined);
  try {
    await guarded(() => migrate(pool));
    const client = await guarded(() => pool.connect());
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      try {
        // Writers (an instance started meanwhile) wait until the copy commits or rolls back.
        await client.query(`LOCK TABLE ${COPIED_TABLES.join(', ')} IN SHARE ROW EXCLUSIVE MODE`);
        const before = await countTarget(client);
        if (COPIED_TABLES.some((table) => before[table] > 0)) throw new TargetNotEmptyError(before);
        for (const table of COPIED_TABLES) await insertRows(client, table, rows[table]);
        const after = await countTarget(client);
        const wrong = COPIED_TABLES.filter((table) => after[table] !== rows[table].length);
        if (wrong.length > 0) {
          throw new Error(`the copy's counts do not match the source's (${wrong.map((table) => `${table}: ${after[table]} of ${rows[table].length}`).join(', ')}): nothing was written`);
        }
        beforeCommit(after);
        await client.query('COMMIT');
        return after;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackFailure: unknown) => {
          broken = rollbackFailure instanceof Error ? rollbackFailure : new Error(String(rollbackFailure));
        });
        throw error;
      }
    } finally {
      client.release(broken);
    }
  } finally {
    await pool.end();
  }
}
