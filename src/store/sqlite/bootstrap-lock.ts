import path from 'node:path';
import Database from 'better-sqlite3';
import type { BootstrapLock } from '../../domain/coordination';
import { createPrivateFile } from '../../file-modes';
import { isSqliteBusy } from './sqlite-errors';
import { WriteMutex } from './write-mutex';

const RETRY_MS = 20;
const NAME = /^[a-z0-9-]{1,64}$/;

/**
 * One-at-a-time work across every process on one data directory: an exclusive SQLite transaction
 * (BEGIN EXCLUSIVE) on `<name>.lock` beside the database, as data-dir-claim.ts claims the
 * directory. The operating system releases it when the process dies, however it dies. It is asked
 * for without waiting (timeout 0) and asked again every few milliseconds from a timer, so a wait
 * never blocks the event loop; within this process, callers of one name queue on a mutex first.
 */
export class SqliteBootstrapLock implements BootstrapLock {
  /** By name: the names are the code's own (NAME), so the map stays small. */
  private readonly local = new Map<string, WriteMutex>();

  constructor(private readonly dir: string) {}

  exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    if (!NAME.test(name)) throw new Error(`not a lock name: ${name}`);
    let mutex = this.local.get(name);
    if (!mutex) this.local.set(name, (mutex = new WriteMutex()));
    return mutex.run(async () => {
      const db = await this.acquire(path.join(this.dir, `${name}.lock`));
      try {
        return await work();
      } finally {
        try {
          db.exec('ROLLBACK');
        } finally {
          db.close();
        }
      }
    });
  }

  private async acquire(file: string): Promise<Database.Database> {
    createPrivateFile(file);
    for (;;) {
      const db = new Database(file, { timeout: 0 });
      try {
        db.exec('BEGIN EXCLUSIVE');
        return db;
      } catch (error) {
        db.close();
        if (!isSqliteBusy(error)) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}
