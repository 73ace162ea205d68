import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { KmsError } from '../errors';
import { createPrivateFile } from '../file-modes';
import { isSqliteBusy } from '../store/sqlite/sqlite-errors';

const RETRY_MIN_MS = 2;
const RETRY_MAX_MS = 50;
/** How often the first waiter of a process looks whether its turn has come (doubling up to the cap). */
const POLL_MIN_MS = 1;
const POLL_MAX_MS = 8;
/** How often a waiter asks whether the process whose ticket is ahead of it still lives. */
const LIVENESS_CHECK_MS = 100;
/** The queue's writes take microseconds: a writer that meets another's waits for it, this long at most. */
const QUEUE_BUSY_TIMEOUT_MS = 1000;
/**
 * Callers of one process that ask while its turn still waits for the lock join that turn, up to this
 * many (see TokenLock): the turn of another process that asked in between waits for them too.
 */
const MAX_CALLERS_PER_TURN = 16;
/** A holder that takes longer than this (a hung HSM call) makes the others give up with a 503. */
const WAIT_LIMIT_MS = 30_000;

/** The names of liveness files (their SQLite journals, and files of anything else, are not). */
const LIVENESS_FILE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Ticket {
  readonly n: number;
  readonly owner: string;
}

/** One caller of {@link TokenLock.hold}. */
interface Caller {
  state: 'waiting' | 'started' | 'gave up';
  readonly run: () => Promise<void>;
  readonly fail: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

/** A process's turn with the lock: one ticket, and the callers who asked while it waited. */
interface Turn {
  readonly ticket: number;
  readonly callers: Caller[];
  ticketDropped: boolean;
}

function hasWaiters(turn: Turn): boolean {
  return turn.callers.some((caller) => caller.state === 'waiting');
}

/**
 * A lock that every process of one service holds while it changes the token: creating the embedded
 * token, generating or destroying key objects. First come, first served, across the processes.
 *
 * Why it exists: SoftHSM's file store keeps each process's view of the token in memory and re-reads
 * the token directory only when the token's generation counter moved. A process that writes an
 * object takes the counter forward itself, past any object another process created since it last
 * looked, and from then on never sees that object (see Generation::commit in SoftHSMv2). Writing
 * only under this lock, after a fresh look at the token, keeps every writer's view complete. For
 * any module it also makes "look, then create if missing" atomic across processes, so that two
 * processes making the same key (the credential-sealing key on a first start) leave one object.
 * The cost: key generation and destruction are serialised across the processes of one data
 * directory (with a network HSM, one round trip at a time), which is rare beside data-key traffic.
 * It does not replace the re-read of the token on a miss that the HSM layer does for any module.
 *
 * The exclusion is an exclusive transaction on a small SQLite file (`file`): the operating system
 * releases it the moment its holder dies, so a process killed while holding it never leaves a stale
 * lock behind (lock files and lock directories need a staleness guess).
 *
 * The order is a queue of tickets beside it (`file`-queue, SQLite in WAL mode): every caller takes a
 * ticket when it asks, and only the caller whose ticket is the oldest takes the exclusion. (Alone,
 * the exclusion favoured whoever retried at the right moment: a process whose callers queued behind
 * its own holder took it again at once, and another process's callers, retrying every few tens of
 * milliseconds, could wait past the limit.) A ticket names its process's liveness file, in
 * `file`-processes/, on which that process holds an exclusive transaction for as long as it lives:
 * a waiter whose turn does not come asks, every so often, whether the process ahead of it still
 * holds its file, and drops the tickets of one that died (SIGKILL included), without a guess.
 *
 * Inside one process, callers queue in turns, each with one ticket, and only the first turn polls.
 * A caller that asks while its process's turn still waits for its ticket to come first joins that
 * turn (up to MAX_CALLERS_PER_TURN), and the turn runs its callers' work one after another under one
 * hold: on SoftHSM, the first write of a process after another process wrote makes its module
 * re-read the token directory (about 10 µs of CPU per object, 0.1 s at 12,600 objects, AMD EPYC),
 * and strict alternation between two workers paid that on every other key. So the order is first
 * come, first served between turns: a turn that took its ticket after another process's turn waits
 * for it, and a caller waits at most for the turns whose tickets were taken before it asked, and
 * for its own turn's callers who asked before it.
 */
export class TokenLock {
  private readonly db: Database.Database;
  private readonly queue: Database.Database;
  private readonly processDir: string;
  /** This process's liveness file: its name (what its tickets say) and the transaction held on it. */
  private readonly self: { readonly name: string; readonly db: Database.Database };
  private readonly statements: {
    readonly take: Database.Statement<[string]>;
    readonly drop: Database.Statement<[number]>;
    readonly dropOwner: Database.Statement<[string]>;
    readonly ahead: Database.Statement<[number], Ticket>;
    readonly owners: Database.Statement<[], { owner: string }>;
  };
  /** The end of this process's queue of turns; it never rejects. */
  private tail: Promise<void> = Promise.resolve();
  /** This process's turn that has a ticket and still waits for the lock: new callers join it. */
  private pendingTurn: Turn | undefined;
  /**
   * This process's tickets whose turn ended but whose DELETE failed (a full disk, a queue busy past
   * its timeout): tried again before each new ticket and while any turn waits. Without this, such a
   * ticket would stay ahead of every later turn of every process (its owner lives), until a restart.
   * A timer tries them too, so that the other processes' turns do not wait for this one's next.
   */
  private readonly undropped = new Set<number>();
  private dropRetry: NodeJS.Timeout | undefined;

  constructor(file: string) {
    // timeout 0: a busy lock is retried here, asynchronously, instead of blocking the event loop.
    // The file stays in SQLite's default rollback-journal mode, where BEGIN EXCLUSIVE excludes
    // every other connection (nothing ever writes to it).
    createPrivateFile(file);
    this.db = new Database(file, { timeout: 0 });
    this.processDir = `${file}-processes`;
    mkdirSync(this.processDir, { recursive: true, mode: 0o700 });
    createPrivateFile(`${file}-queue`);
    this.queue = new Database(`${file}-queue`, { timeout: QUEUE_BUSY_TIMEOUT_MS });
    try {
      setUpQueue(this.queue);
      this.statements = {
        take: this.queue.prepare('INSERT INTO tickets (owner) VALUES (?)'),
        drop: this.queue.prepare('DELETE FROM tickets WHERE n = ?'),
        dropOwner: this.queue.prepare('DELETE FROM tickets WHERE owner = ?'),
        ahead: this.queue.prepare<[number], Ticket>('SELECT n, owner FROM tickets WHERE n < ? ORDER BY n LIMIT 1'),
        owners: this.queue.prepare<[], { owner: string }>('SELECT DISTINCT owner FROM tickets'),
      };
      this.self = claimLivenessFile(this.processDir);
      this.sweep();
    } catch (error) {
      this.queue.close();
      this.db.close();
      throw error;
    }
  }

  /**
   * Runs `work` while holding the lock, released afterwards whatever `work` does. The caller joins
   * this process's turn that is still waiting for the lock, or takes a ticket for a new turn now:
   * turns of every process get the lock in the order their tickets were taken. The wait ends after
   * `waitLimitMs` with 503 KMS.0104; once `work` has started, it is not cut short.
   */
  hold<T>(work: () => Promise<T> | T, waitLimitMs = WAIT_LIMIT_MS): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let turn = this.pendingTurn;
      if (!turn || turn.callers.length >= MAX_CALLERS_PER_TURN) {
        this.retryDrops();
        let ticket: number;
        try {
          ticket = Number(this.statements.take.run(this.self.name).lastInsertRowid);
        } catch (error) {
          reject(new KmsError('KMS.0104', { cause: error }));
          return;
        }
        const created: Turn = { ticket, callers: [], ticketDropped: false };
        turn = created;
        this.pendingTurn = created;
        this.tail = this.tail.then(() => this.serve(created)).catch(() => undefined); // serve never rejects; kept safe
      }
      const joined = turn;
      const caller: Caller = {
        state: 'waiting',
        run: async () => {
          try {
            resolve(await work());
          } catch (error) {
            reject(error);
          }
        },
        fail: (error) => reject(error),
        timer: setTimeout(() => {
          if (caller.state !== 'waiting') return;
          caller.state = 'gave up';
          reject(lockTimeout(waitLimitMs));
          // A turn nobody waits for any more leaves the queue at once: the callers behind it must not wait for it.
          if (!hasWaiters(joined)) this.endTurn(joined);
        }, waitLimitMs),
      };
      joined.callers.push(caller);
    });
  }

  /**
   * A number that changes whenever another process (or another TokenLock on the same file) has
   * taken or left the queue since: every change of the token by another process of the service is
   * made under this lock, so while this number stays the same, none was (PRAGMA data_version).
   */
  changesElsewhere(): number {
    return this.queue.pragma('data_version', { simple: true }) as number;
  }

  close(): void {
    clearTimeout(this.dropRetry);
    this.undropped.clear();
    if (this.db.open) this.db.close();
    if (this.queue.open) {
      try {
        this.statements.dropOwner.run(this.self.name);
      } catch {
        // Best effort: the others drop the tickets of a process whose liveness file is free.
      }
      this.queue.close();
    }
    if (this.self.db.open) {
      this.self.db.close();
      rmSync(path.join(this.processDir, this.self.name), { force: true });
      rmSync(path.join(this.processDir, `${this.self.name}-journal`), { force: true });
    }
  }

  /**
   * One turn: waits for its ticket to come first and for the exclusion, then runs its callers' work
   * one after another (each caller's failure is its own) and releases. Never rejects.
   */
  private async serve(turn: Turn): Promise<void> {
    const waiting = (): boolean => hasWaiters(turn);
    if (!waiting()) return this.endTurn(turn);
    let acquired = false;
    try {
      acquired = (await this.waitForTurn(turn.ticket, waiting)) && (await this.acquire(waiting));
    } catch (error) {
      this.endTurn(turn);
      // The lock's own files failed (SQLite): the token cannot be changed now, as when the lock is not free.
      const failure = error instanceof KmsError ? error : new KmsError('KMS.0104', { cause: error });
      for (const caller of turn.callers) {
        if (caller.state !== 'waiting') continue;
        caller.state = 'gave up';
        clearTimeout(caller.timer);
        caller.fail(failure);
      }
      return;
    }
    if (!acquired) return this.endTurn(turn); // every caller gave up meanwhile
    if (this.pendingTurn === turn) this.pendingTurn = undefined; // callers from now on take the next turn
    try {
      for (const caller of turn.callers) {
        if (caller.state !== 'waiting') continue;
        caller.state = 'started';
        clearTimeout(caller.timer);
        await caller.run();
      }
    } finally {
      // The exclusion first: the turn next in line finds it free once this ticket is gone.
      try {
        this.db.exec('COMMIT');
      } finally {
        this.endTurn(turn);
      }
    }
  }

  /** Closes `turn` to new callers and drops its ticket (once). */
  private endTurn(turn: Turn): void {
    if (this.pendingTurn === turn) this.pendingTurn = undefined;
    if (turn.ticketDropped) return;
    turn.ticketDropped = true;
    this.dropTicket(turn.ticket);
  }

  /**
   * Waits until no ticket of a living process is older than `ticket`, dropping those of dead ones.
   * False when `waiting` says nobody waits for it any more.
   */
  private async waitForTurn(ticket: number, waiting: () => boolean): Promise<boolean> {
    let nextCheck = Date.now() + LIVENESS_CHECK_MS;
    let front: number | undefined;
    let wait = POLL_MIN_MS;
    for (;;) {
      this.retryDrops();
      const ahead = this.statements.ahead.get(ticket);
      if (!ahead) return true;
      if (ahead.n !== front) {
        front = ahead.n; // the queue moved: look again soon
        wait = POLL_MIN_MS;
      }
      const now = Date.now();
      if (now >= nextCheck) {
        nextCheck = now + LIVENESS_CHECK_MS;
        if (!this.ownerAlive(ahead.owner)) {
          this.statements.dropOwner.run(ahead.owner);
          continue;
        }
      }
      if (!waiting()) return false;
      await sleep(wait);
      wait = Math.min(wait * 2, POLL_MAX_MS);
    }
  }

  /** Takes the exclusion; false when `waiting` says nobody waits for it any more. */
  private async acquire(waiting: () => boolean): Promise<boolean> {
    for (let wait = RETRY_MIN_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
      try {
        this.db.exec('BEGIN EXCLUSIVE');
        return true;
      } catch (error) {
        // Another process holds it: one of an older version that takes no ticket, or a holder that
        // has not committed yet.
        if (!isSqliteBusy(error)) throw error;
      }
      if (!waiting()) return false;
      await sleep(wait);
    }
  }

  private dropTicket(ticket: number): void {
    try {
      this.statements.drop.run(ticket);
      this.undropped.delete(ticket);
    } catch {
      // The queue is busy past its timeout or cannot be written: tried again (retryDrops), and at
      // the latest the ticket goes with this process's liveness file when it ends.
      if (!this.queue.open) return;
      this.undropped.add(ticket);
      this.dropRetry ??= setTimeout(() => {
        this.dropRetry = undefined;
        this.retryDrops();
      }, POLL_MAX_MS).unref();
    }
  }

  private retryDrops(): void {
    for (const ticket of this.undropped) this.dropTicket(ticket);
  }

  /**
   * Whether the process that wrote `owner`'s tickets still lives: it holds an exclusive transaction
   * on its liveness file as long as it does. A dead one's file is removed here.
   */
  private ownerAlive(owner: string): boolean {
    if (owner === this.self.name) return true;
    const file = path.join(this.processDir, owner);
    let probe: Database.Database;
    try {
      probe = new Database(file, { timeout: 0, fileMustExist: true });
    } catch {
      return false; // no file: its process is gone and was swept already
    }
    try {
      probe.exec('BEGIN EXCLUSIVE');
    } catch (error) {
      probe.close();
      if (isSqliteBusy(error)) return true;
      // Not a database (a living process's file always is, empty): nothing holds it; it goes.
      rmSync(file, { force: true });
      return false;
    }
    // Removed while this probe holds it, so that no one else takes the file for a living one's.
    rmSync(file, { force: true });
    probe.close();
    rmSync(`${file}-journal`, { force: true });
    return false;
  }

  /** Drops the tickets and liveness files of processes that died (each start does it: the folder stays small). */
  private sweep(): void {
    const files = readdirSync(this.processDir).filter((name) => LIVENESS_FILE.test(name));
    const owners = new Set([...files, ...this.statements.owners.all().map((row) => row.owner)]);
    for (const owner of owners) {
      if (!this.ownerAlive(owner)) this.statements.dropOwner.run(owner);
    }
  }
}

/**
 * Creates this process's liveness file and holds an exclusive transaction on it. A sweep by another
 * process may remove a file between its creation and its lock (it takes it for a dead one's): then
 * another is made.
 */
function claimLivenessFile(dir: string): { name: string; db: Database.Database } {
  for (;;) {
    const name = randomUUID();
    const file = path.join(dir, name);
    closeSync(openSync(file, 'wx', 0o600));
    const db = new Database(file, { timeout: 0 });
    try {
      // Nothing is ever written to it: no journal file beside it.
      db.pragma('journal_mode = MEMORY');
      db.exec('BEGIN EXCLUSIVE');
    } catch (error) {
      db.close();
      if (isSqliteBusy(error)) continue;
      throw error;
    }
    if (existsSync(file)) return { name, db };
    db.close();
  }
}

/**
 * The queue's mode and table. Several processes opening a fresh data directory at once all set WAL
 * mode and create the table: SQLite answers SQLITE_BUSY to the switch to WAL without calling the
 * busy handler ("database is locked"), so it is tried again here, for up to QUEUE_BUSY_TIMEOUT_MS
 * (once, at start; blocking is fine there).
 */
function setUpQueue(queue: Database.Database): void {
  const giveUpAt = Date.now() + QUEUE_BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      queue.pragma('journal_mode = WAL');
      // The queue says who waits now; after a power loss its last changes may be lost, never its consistency.
      queue.pragma('synchronous = NORMAL');
      queue.exec('CREATE TABLE IF NOT EXISTS tickets (n INTEGER PRIMARY KEY AUTOINCREMENT, owner TEXT NOT NULL)');
      return;
    } catch (error) {
      if (!isSqliteBusy(error) || Date.now() >= giveUpAt) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function lockTimeout(waitLimitMs: number): KmsError {
  return new KmsError('KMS.0104', { cause: new Error(`the token lock was not free within ${waitLimitMs} ms`) });
}
