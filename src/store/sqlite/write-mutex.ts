/**
 * One writer at a time in this process: every write of the SQLite store (an atomic method's
 * transaction, or a whole withTransaction) runs under it, in the order asked.
 *
 * Why: better-sqlite3 is synchronous, and its busy handler sleeps on the event loop. Were a
 * write on the autocommit connection attempted while this process's own withTransaction held the
 * write lock on the other connection (waiting on an await), it would sleep for the busy timeout
 * with the event loop blocked, and the transaction it waits for could never go on. Taking the
 * mutex first, the write waits asynchronously instead. Other processes' writers are still waited
 * for by SQLite's busy handler, as before the seam.
 */
export class WriteMutex {
  private locked = false;
  private readonly waiters: Array<() => void> = [];

  async run<T>(work: () => Promise<T> | T): Promise<T> {
    if (this.locked) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.locked = true;
    try {
      return await work();
    } finally {
      // Handed to the next waiter as it is (still locked), or freed.
      const next = this.waiters.shift();
      if (next) next();
      else this.locked = false;
    }
  }
}
