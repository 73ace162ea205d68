import type { Pool } from 'pg';
import type { JobLeases, PoolStats, StoreObserver, StoreStats } from '../../domain/coordination';
import type { MetadataStore, Repositories } from '../../domain/repositories';
import type { PostgresDatabaseConfig } from '../../config';
import { PostgresAliasRepository } from './alias-repository';
import { PostgresAuditCheckpointRepository } from './audit-checkpoint-repository';
import { PostgresBootstrapLock } from './bootstrap-lock';
import { PostgresChangeFeed } from './change-feed';
import { createClient, createPool } from './connection';
import { PostgresCredentialRepository } from './credential-repository';
import { guarded } from './errors';
import { inTransaction, PoolExecutor, TransactionExecutor, type Executor } from './executor';
import { PostgresGrantRepository } from './grant-repository';
import { PostgresImportRepository } from './import-repository';
import { PostgresJobLeases } from './job-leases';
import { PostgresKeyRepository } from './key-repository';
import { migrate } from './migrations';
import { observedLeases, StoreEvents } from '../store-events';
import { PostgresRotationRepository } from './rotation-repository';
import { PostgresTagRepository } from './tag-repository';

/**
 * The metadata store on PostgreSQL, shared by several instances (KMS_DATABASE_URL). The SQL is
 * written by hand for this dialect, beside SQLite's (src/store/sqlite): a query builder with both
 * dialects (Kysely) would let each query be written once, but the two stores differ where it
 * matters (locking, NOTIFY, upserts, advisory locks), the queries are few, and the store contract
 * suite (test/store/store-contract.ts) holds both to one behaviour; not worth a dependency on the
 * hot path for this.
 *
 * One pool for the repositories (KMS_DATABASE_POOL_SIZE connections), one dedicated connection for
 * the change feed's LISTEN, and one for each bootstrap lock while it is held.
 */

export interface PostgresStoreOptions {
  /** Where connection problems are reported (the logger); they never end the process. */
  readonly report?: (problem: string, error: unknown) => void;
}

function repositories(db: Executor): Repositories {
  return {
    keys: new PostgresKeyRepository(db),
    grants: new PostgresGrantRepository(db),
    aliases: new PostgresAliasRepository(db),
    rotations: new PostgresRotationRepository(db),
    credentials: new PostgresCredentialRepository(db),
    auditCheckpoints: new PostgresAuditCheckpointRepository(db),
    tags: new PostgresTagRepository(db),
    imports: new PostgresImportRepository(db),
  };
}

export class PostgresStore implements MetadataStore {
  readonly kind = 'postgres' as const;
  readonly keys;
  readonly grants;
  readonly aliases;
  readonly rotations;
  readonly credentials;
  readonly auditCheckpoints;
  readonly tags;
  readonly imports;
  readonly leases: JobLeases;
  readonly bootstrap: PostgresBootstrapLock;

  constructor(
    private readonly pool: Pool,
    readonly changes: PostgresChangeFeed,
    bootstrap: PostgresBootstrapLock,
    private readonly maxConnections: number,
    private readonly events: StoreEvents = new StoreEvents(),
  ) {
    const db = new PoolExecutor(pool);
    ({ keys: this.keys, grants: this.grants, aliases: this.aliases, rotations: this.rotations, credentials: this.credentials, auditCheckpoints: this.auditCheckpoints, tags: this.tags, imports: this.imports } = repositories(db));
    this.leases = observedLeases(new PostgresJobLeases(db), events);
    this.bootstrap = bootstrap;
  }

  withTransaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, (client, changes) => work(repositories(new TransactionExecutor(client, changes))));
  }

  async ping(): Promise<void> {
    await guarded(() => this.pool.query('SELECT 1'));
  }

  /** What the metrics read: the pool's connections and its waiters. */
  poolStats(): PoolStats {
    return { total: this.pool.totalCount, idle: this.pool.idleCount, max: this.maxConnections, waiting: this.pool.waitingCount };
  }

  stats(): StoreStats {
    return { pool: this.poolStats() };
  }

  observe(observer: StoreObserver): void {
    this.events.add(observer);
  }

  async close(): Promise<void> {
    await this.changes.close();
    await this.pool.end();
  }
}

/**
 * Opens the store: the pool, the schema's migrations (once, whichever instance comes first), then
 * the change feed's LISTEN, before anything can be written through it.
 */
export async function openPostgresStore(config: PostgresDatabaseConfig, options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const report = options.report ?? (() => undefined);
  const pool = createPool(config);
  // An idle connection's error (the server restarted) would otherwise end the process; the pool
  // drops that connection and opens another when next asked.
  pool.on('error', (error) => report('an idle database connection failed', error));
  const events = new StoreEvents();
  const feed = new PostgresChangeFeed(() => createClient(config), report, events);
  try {
    await guarded(() => migrate(pool));
    await guarded(() => feed.start());
  } catch (error) {
    await feed.close();
    await pool.end().catch(() => undefined);
    throw error;
  }
  return new PostgresStore(pool, feed, new PostgresBootstrapLock(() => createClient(config), report), config.poolSize, events);
}
