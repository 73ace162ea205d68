import Database from 'better-sqlite3';
import { KmsError } from '../errors';
import { createPrivateFile } from '../file-modes';
import { isSqliteBusy } from '../store/sqlite-errors';

const RETRY_MIN_MS = 2;
const RETRY_MAX_MS = 50;
/** A holder that takes longer than this (a hung HSM call) makes the others give up with a 503. */
const WAIT_LIMIT_MS = 30_000;

/**
 * A lock that every process of one service holds while it changes the token: creating the embedded
 * token, generating or destroying key objects.
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
 * It is an exclusive transaction on a small SQLite file: the operating system releases it the moment
 * its holder dies, so a process killed while holding it never leaves a stale lock behind (lock files
 * and lock directories need a staleness guess). Inside one process, holders queue on a promise chain.
 */
export class TokenLock {
  private readonly db: Database.Database;
  /** The end of this process's queue for the lock; it never rejects. */
  private tail: Promise<void> = Promise.resolve();

  constructor(file: string) {
    // timeout 0: a busy lock is retried here, asynchronously, instead of blocking the event loop.
    // The file stays in SQLite's default rollback-journal mode, where BEGIN EXCLUSIVE excludes
    // every other connection (nothing ever writes to it).
    createPrivateFile(file);
    this.db = new Database(file, { timeout: 0 });
  }

  /**
   * Runs `work` while holding the lock, released afterwards whatever `work` does. The wait for the
   * lock, in this process's queue and then for the other processes, ends after `waitLimitMs` with
   * 503 KMS.0104; once `work` has started, it is not cut short.
   */
  hold<T>(work: () => Promise<T> | T, waitLimitMs = WAIT_LIMIT_MS): Promise<T> {
    const giveUpAt = Date.now() + waitLimitMs;
    return new Promise<T>((resolve, reject) => {
      let turn: 'waiting' | 'started' | 'gave up' = 'waiting';
      const timer = setTimeout(() => {
        if (turn !== 'waiting') return;
        turn = 'gave up';
        reject(lockTimeout(waitLimitMs));
      }, waitLimitMs);
      this.tail = this.tail.then(async () => {
        clearTimeout(timer);
        if (turn === 'gave up') return; // its caller has had its 503: the next one's turn
        turn = 'started';
        try {
          await this.acquire(giveUpAt, waitLimitMs);
        } catch (error) {
          reject(error);
          return;
        }
        try {
          resolve(await work());
        } catch (error) {
          reject(error);
        } finally {
          this.db.exec('COMMIT');
        }
      }).catch(() => undefined); // a failed COMMIT (the lock closed) must not stop the queue
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private async acquire(giveUpAt: number, waitLimitMs: number): Promise<void> {
    for (let wait = RETRY_MIN_MS; ; wait = Math.min(wait * 2, RETRY_MAX_MS)) {
      try {
        this.db.exec('BEGIN EXCLUSIVE');
        return;
      } catch (error) {
        if (!isSqliteBusy(error)) throw error; // another process holds it
      }
      if (Date.now() >= giveUpAt) throw lockTimeout(waitLimitMs);
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}

function lockTimeout(waitLimitMs: number): KmsError {
  return new KmsError('KMS.0104', { cause: new Error(`the token lock was not free within ${waitLimitMs} ms`) });
}
