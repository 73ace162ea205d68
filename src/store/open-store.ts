import type { Config } from '../config';
import type { MetadataStore } from '../domain/repositories';
import { SqliteStore } from './sqlite/sqlite-store';

/**
 * What the services keep their state in: today the data directory's SQLite database
 * (src/store/sqlite). Opened in one place, openStore, which src/open-core.ts calls: the choice of
 * another store belongs here.
 */
export function openStore(config: Pick<Config, 'databasePath'>): MetadataStore {
  return SqliteStore.open(config.databasePath);
}
