import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { changePayload } from './change-payload';
import { guarded } from './errors';

/**
 * How the repositories reach the database: through the pool outside a transaction, or through the
 * one connection of a withTransaction. Either way a write that is one repository method is atomic
 * (`atomic`), and the keys it changed are announced on the change feed by NOTIFY inside the same
 * transaction, just before its COMMIT: PostgreSQL delivers a notification only if, and once, its
 * transaction commits, so a listener never hears of a change it cannot yet read, nor of one rolled
 * back.
 */

/** The channel of the change feed (change-feed.ts listens on it). Payload: change-payload.ts (a key id, or '' for "anything", and when it was sent). */
export const CHANGES_CHANNEL = 'kms_changes';

export interface Sql {
  query<R extends QueryResultRow>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>>;
}

export interface Session extends Sql {
  /** Announces, when the transaction commits, that this key changed (undefined: anything may have). */
  changed(keyId: string | undefined): void;
}

export interface Executor extends Sql {
  /** Runs `work` atomically: in a transaction of its own, or as a part of the enclosing one that a failure undoes alone. */
  atomic<T>(work: (session: Session) => Promise<T>): Promise<T>;
}

function sqlOf(client: PoolClient): Sql {
  return { query: (text, values) => guarded(() => client.query(text, values ? [...values] : undefined)) };
}

/** Outside a transaction: reads on any pooled connection, each atomic write in a transaction of its own. */
export class PoolExecutor implements Executor {
  constructor(private readonly pool: Pool) {}

  query<R extends QueryResultRow>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>> {
    return guarded(() => this.pool.query<R>(text, values ? [...values] : undefined));
  }

  atomic<T>(work: (session: Session) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, (client, changes) => work({ ...sqlOf(client), changed: (keyId) => changes.add(keyId ?? '') }));
  }
}

/**
 * Inside a withTransaction: everything on its connection. An atomic write is a savepoint, so that a
 * refused write (a duplicate alias, a quota) undoes itself and leaves the transaction usable, as a
 * refused statement does in SQLite; one at a time, since savepoints nest by order.
 */
export class TransactionExecutor implements Executor {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: PoolClient,
    private readonly changes: Set<string>,
  ) {}

  query<R extends QueryResultRow>(text: string, values?: readonly unknown[]): Promise<QueryResult<R>> {
    return sqlOf(this.client).query<R>(text, values);
  }

  atomic<T>(work: (session: Session) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const sql = sqlOf(this.client);
      const changed = new Set<string>();
      await sql.query('SAVEPOINT atomic_write');
      try {
        const result = await work({ ...sql, changed: (keyId) => changed.add(keyId ?? '') });
        await sql.query('RELEASE SAVEPOINT atomic_write');
        for (const keyId of changed) this.changes.add(keyId);
        return result;
      } catch (error) {
        await sql.query('ROLLBACK TO SAVEPOINT atomic_write');
        throw error;
      }
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }
}

/**
 * BEGIN, `work`, NOTIFY of the keys it changed, COMMIT; ROLLBACK when anything throws (the error is
 * rethrown). A connection whose ROLLBACK failed is destroyed, not returned to the pool.
 */
export async function inTransaction<T>(pool: Pool, work: (client: PoolClient, changes: Set<string>) => Promise<T>): Promise<T> {
  const client = await guarded(() => pool.connect());
  const sql = sqlOf(client);
  const changes = new Set<string>();
  let broken: Error | undefined;
  try {
    await sql.query('BEGIN');
    const result = await work(client, changes);
    if (changes.size > 0) {
      const sentAtMs = Date.now();
      await sql.query('SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload', [CHANGES_CHANNEL, [...changes].map((keyId) => changePayload(keyId, sentAtMs))]);
    }
    await sql.query('COMMIT');
    return result;
  } catch (error) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackFailure) {
      broken = rollbackFailure instanceof Error ? rollbackFailure : new Error(String(rollbackFailure));
    }
    throw error;
  } finally {
    client.release(broken);
  }
}
