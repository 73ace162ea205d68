import type Database from 'better-sqlite3';
import type { StoreChange } from '../../domain/coordination';
import type { WriteMutex } from './write-mutex';

/**
 * What a repository of the SQLite store runs on: one connection, how its atomic writes are made,
 * and where the changes they make are announced. Two sessions exist per store (sqlite-store.ts):
 *
 * - the autocommit session, on the connection every read outside a transaction uses. Its atomic
 *   writes take the store's write mutex, then run as one synchronous BEGIN IMMEDIATE transaction
 *   (nothing else of this process runs meanwhile: better-sqlite3 does not yield); their changes
 *   are announced at once, after the commit.
 * - the transaction session, on a second connection, used only inside withTransaction, which holds
 *   the mutex for the whole transaction. Its atomic writes are savepoints of that transaction, and
 *   their changes are announced when it commits (forgotten when it rolls back).
 *
 * Reads on the autocommit connection while a transaction is open on the other never see its
 * uncommitted writes (WAL gives each read the last committed state), however the requests'
 * awaits interleave.
 */
export interface SqliteSession {
  readonly db: Database.Database;
  /** Runs `write` atomically (see above). */
  atomic<T>(write: () => T): Promise<T>;
  /** Announces a change made by a write of this session, once it has committed. */
  announce(change: StoreChange): void;
}

/** The autocommit session. */
export function autocommitSession(db: Database.Database, mutex: WriteMutex, publish: (change: StoreChange) => void): SqliteSession {
  return {
    db,
    atomic: (write) => mutex.run(() => db.transaction(write).immediate()),
    announce: publish,
  };
}

/** The transaction session: its changes wait in `pending` until the transaction commits. */
export class TransactionSession implements SqliteSession {
  private pending: StoreChange[] = [];

  constructor(readonly db: Database.Database) {}

  async atomic<T>(write: () => T): Promise<T> {
    // Inside the open transaction, better-sqlite3 makes this a savepoint: a write that throws
    // undoes only its own part, and the caller decides whether the transaction goes on.
    return this.db.transaction(write)();
  }

  announce(change: StoreChange): void {
    this.pending.push(change);
  }

  /** The changes made since the last call, forgotten here. */
  take(): StoreChange[] {
    const changes = this.pending;
    this.pending = [];
    return changes;
  }
}
