import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { createPrivateFile } from './file-modes';
import { StartError } from './start-error';
import { isSqliteBusy } from './store/sqlite/sqlite-errors';

/** Claims held by this process: kept referenced so that they live as long as the process. */
const held: Database.Database[] = [];

/**
 * Claims the data directory for this service for the life of the process (a single process, or a
 * cluster's primary on behalf of its workers). A second service started on the same directory
 * stops at once with one line, before it touches anything: its start-up pass would roll back the
 * key creations the running service has under way, and it would open the same audit chains.
 * The claim is an exclusive SQLite transaction on `serve.lock`: the operating system ends it when
 * the process dies, however it dies, so a crash never leaves the directory claimed. The command-line
 * tool does not claim the directory; it works beside the service.
 */
export function claimDataDirectory(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, 'serve.lock');
  createPrivateFile(file);
  const db = new Database(file, { timeout: 0 });
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    if (isSqliteBusy(error)) {
      throw new StartError(`the data directory ${dataDir} is already served by another process`);
    }
    throw error;
  }
  held.push(db);
}
