import type Database from 'better-sqlite3';
import type { Config } from '../config';
import { ChangeWatch } from './change-watch';
import { openDatabase } from './sqlite/database';

/**
 * What the services keep their state in: today the data directory's SQLite database, with the
 * watch that tells this process's caches of another process's commits (the cluster's workers, the
 * command-line tool). Opened in one place, openStore, which src/open-core.ts calls: the choice of
 * another store belongs here.
 */
export interface Store {
  readonly db: Database.Database;
  readonly changes: ChangeWatch;
  close(): void;
}

export function openStore(config: Pick<Config, 'databasePath'>): Store {
  const db = openDatabase(config.databasePath);
  try {
    return { db, changes: new ChangeWatch(db), close: () => db.close() };
  } catch (error) {
    db.close();
    throw error;
  }
}
