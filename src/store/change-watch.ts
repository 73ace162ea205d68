import type Database from 'better-sqlite3';

/**
 * Tells caches when another connection (another process: the command-line tool, a second
 * instance) has committed to the database. PRAGMA data_version changes exactly then; it stays the
 * same for this connection's own writes, which the stores invalidate themselves.
 *
 * The pragma is asked at most once per turn of the event loop: every request handled in one turn
 * sees the same answer, and a write elsewhere is noticed in the next turn.
 */
export class ChangeWatch {
  private readonly dataVersion: Database.Statement<[], number>;
  private version: number;
  private checkedThisTurn = false;

  constructor(db: Database.Database) {
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
    this.version = this.dataVersion.get()!;
  }

  /** A number that changes whenever another connection has committed. */
  current(): number {
    if (!this.checkedThisTurn) {
      this.checkedThisTurn = true;
      setImmediate(() => {
        this.checkedThisTurn = false;
      });
      this.version = this.dataVersion.get()!;
    }
    return this.version;
  }
}

/** A cache's view of a ChangeWatch: whether anything changed elsewhere since it last looked. */
export class ChangeCursor {
  private seen: number;

  constructor(private readonly watch: ChangeWatch) {
    this.seen = watch.current();
  }

  changedElsewhere(): boolean {
    const now = this.watch.current();
    if (now === this.seen) return false;
    this.seen = now;
    return true;
  }
}
