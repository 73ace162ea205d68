import type Database from 'better-sqlite3';
import type { ChangeFeed, StoreChange } from '../../domain/coordination';

/**
 * The SQLite store's change feed. Another connection's commits (another process: a cluster's
 * worker, the command-line tool; and this store's own transaction connection) show as a change
 * of PRAGMA data_version on the autocommit connection, which says only that something changed:
 * they are delivered as {kind: 'all'}. The pragma is asked at most once per turn of the event
 * loop (poll), so every request handled in one turn sees the same answer, and a write elsewhere
 * is noticed in the next turn. This process's own writes are delivered as they commit, naming the
 * key they changed (publish, called by the repositories' sessions).
 */
export class SqliteChangeFeed implements ChangeFeed {
  private readonly listeners = new Set<(change: StoreChange) => void>();
  private readonly dataVersion: Database.Statement<[], number>;
  private version: number;
  private checkedThisTurn = false;
  private closed = false;

  constructor(db: Database.Database) {
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.version = this.dataVersion.get()!;
  }

  subscribe(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  poll(): void {
    if (this.checkedThisTurn || this.closed) return;
    this.checkedThisTurn = true;
    setImmediate(() => {
      this.checkedThisTurn = false;
    });
    const now = this.dataVersion.get()!;
    if (now === this.version) return;
    this.version = now;
    this.publish({ kind: 'all' });
  }

  /** Delivers a committed change of this process. */
  publish(change: StoreChange): void {
    for (const listener of this.listeners) listener(change);
  }

  /** No more polls: the connection is closing. */
  close(): void {
    this.closed = true;
    this.listeners.clear();
  }
}
