import type { Config } from '../config';
import type { MetadataStore } from '../domain/repositories';
import { openPostgresStore } from './postgres/postgres-store';
import { SqliteStore } from './sqlite/sqlite-store';

/**
 * What the services keep their state in: the data directory's SQLite database (src/store/sqlite),
 * the embedded default, or PostgreSQL when KMS_DATABASE_URL names one (src/store/postgres), which
 * several instances share. Opened in one place, openStore, which src/open-core.ts calls.
 */
export interface OpenStoreOptions {
  /** Where the PostgreSQL store reports connection problems it recovers from (the change feed's reconnects, an idle connection lost). */
  readonly report?: (problem: string, error: unknown) => void;
}

export async function openStore(config: Pick<Config, 'databasePath' | 'database'>, options: OpenStoreOptions = {}): Promise<MetadataStore> {
  if (config.database.kind === 'postgres') return openPostgresStore(config.database, options);
  return SqliteStore.open(config.databasePath);
}
