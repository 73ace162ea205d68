import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { JobLeases, StoreObserver, StoreStats } from '../../domain/coordination';
import type { MetadataStore, Repositories } from '../../domain/repositories';
import { observedLeases, StoreEvents } from '../store-events';
import { SqliteAliasRepository } from './alias-repository';
import { SqliteAuditCheckpointRepository } from './audit-checkpoint-repository';
import { SqliteBootstrapLock } from './bootstrap-lock';
import { SqliteChangeFeed } from './change-feed';
import { SqliteCredentialRepository } from './credential-repository';
import { openConnection, openDatabase } from './database';
import { SqliteGrantRepository } from './grant-repository';
import { SqliteImportRepository } from './import-repository';
import { SqliteJobLeases } from './job-leases';
import { SqliteKeyRepository } from './key-repository';
import { SqliteRotationRepository } from './rotation-repository';
import { SqliteTagRepository } from './tag-repository';
import { isSqliteBusy } from './sqlite-errors';
import { autocommitSession, TransactionSession, type SqliteSession } from './session';
import { WriteMutex } from './write-mutex';

/** How long withTransaction waits for another connection's write lock: the busy timeout of database.ts. */
const BEGIN_WAIT_MS = 5000;
/** The longest pause between two attempts at BEGIN IMMEDIATE while another connection writes. */
const BEGIN_RETRY_MAX_MS = 20;

/**
 * The embedded store: the data directory's SQLite database (database.ts), in WAL mode, shared by
 * the service's processes and the command-line tool. Two connections (session.ts says why): one
 * for reads and atomic writes, one for withTransaction; one write mutex orders this process's
 * writers on both.
 */
export class SqliteStore implements MetadataStore {
  readonly kind = 'sqlite' as const;
  readonly keys: SqliteKeyRepository;
  readonly grants: SqliteGrantRepository;
  readonly aliases: SqliteAliasRepository;
  readonly rotations: SqliteRotationRepository;
  readonly credentials: SqliteCredentialRepository;
  readonly auditCheckpoints: SqliteAuditCheckpointRepository;
  readonly tags: SqliteTagRepository;
  readonly imports: SqliteImportRepository;
  readonly changes: SqliteChangeFeed;
  readonly leases: JobLeases;
  readonly bootstrap: SqliteBootstrapLock;

  private readonly events = new StoreEvents();
  private readonly mutex = new WriteMutex();
  private readonly transaction: TransactionSession;
  private readonly inTransaction: Repositories;
  private readonly ping_: Database.Statement<[]>;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly db: Database.Database,
    private readonly txDb: Database.Database,
  ) {
    this.changes = new SqliteChangeFeed(db);
    const session = autocommitSession(db, this.mutex, (change) => this.changes.publish(change));
    this.keys = new SqliteKeyRepository(session);
    this.grants = new SqliteGrantRepository(session);
    this.aliases = new SqliteAliasRepository(session);
    this.rotations = new SqliteRotationRepository(session);
    this.credentials = new SqliteCredentialRepository(session);
    this.auditCheckpoints = new SqliteAuditCheckpointRepository(session);
    this.tags = new SqliteTagRepository(session);
    this.imports = new SqliteImportRepository(session);
    this.transaction = new TransactionSession(txDb);
    this.inTransaction = repositories(this.transaction);
    // Per store instance: two processes, or two stores of one process, never share a holder name.
    this.leases = observedLeases(new SqliteJobLeases(session, `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`), this.events);
    this.bootstrap = new SqliteBootstrapLock(path.dirname(db.name));
    this.ping_ = db.prepare('SELECT 1 FROM sqlite_master LIMIT 1');
  }

  /** Opens (and creates, and migrates) the database file. */
  static open(file: string): SqliteStore {
    const db = openDatabase(file);
    let txDb: Database.Database | undefined;
    try {
      txDb = openConnection(file);
      // BEGIN IMMEDIATE is retried from a timer (begin()), never by the busy handler, which
      // sleeps with the event loop blocked; the lock then held, nothing else on it waits.
      txDb.pragma('busy_timeout = 0');
      return new SqliteStore(db, txDb);
    } catch (error) {
      txDb?.close();
      db.close();
      throw error;
    }
  }

  /**
   * BEGIN IMMEDIATE on the transaction connection, under the write mutex for the whole of `work`:
   * no other writer of this process (nor, by SQLite's lock, of another) runs until it ends, and
   * reads outside it (on the other connection) see only what has committed. Its changes are
   * announced after the commit.
   */
  withTransaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      await this.begin();
      try {
        const result = await work(this.inTransaction);
        this.txDb.exec('COMMIT');
        for (const change of this.transaction.take()) this.changes.publish(change);
        return result;
      } catch (error) {
        this.transaction.take();
        if (this.txDb.inTransaction) this.txDb.exec('ROLLBACK');
        throw error;
      }
    });
  }

  /**
   * BEGIN IMMEDIATE, waiting for another connection's transaction without blocking the event loop:
   * that transaction may be another SqliteStore's of this process (a CLI command beside the
   * service, the contract suite's second instance), awaiting its own next step on this event loop,
   * which SQLite's busy handler, sleeping synchronously, would never let it take: both would wait
   * out the busy timeout and fail "database is locked".
   */
  private async begin(): Promise<void> {
    const giveUpAt = Date.now() + BEGIN_WAIT_MS;
    for (let pause = 1; ; pause = Math.min(pause * 2, BEGIN_RETRY_MAX_MS)) {
      try {
        this.txDb.exec('BEGIN IMMEDIATE');
        return;
      } catch (error) {
        if (!isSqliteBusy(error) || Date.now() >= giveUpAt) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  async ping(): Promise<void> {
    this.ping_.get();
  }

  /**
   * Lease outcomes only: the change feed learns of other processes' commits from data_version,
   * which says neither when nor what (no lag to measure), and has no connection to lose.
   */
  observe(observer: StoreObserver): void {
    this.events.add(observer);
  }

  /** No pool: two connections of this process (session.ts). */
  stats(): StoreStats {
    return {};
  }

  /** Waits for the writers under way (the mutex), then closes both connections. */
  close(): Promise<void> {
    return (this.closing ??= this.mutex.run(() => {
      this.changes.close();
      try {
        this.txDb.close();
      } finally {
        this.db.close();
      }
    }));
  }
}

function repositories(session: SqliteSession): Repositories {
  return {
    keys: new SqliteKeyRepository(session),
    grants: new SqliteGrantRepository(session),
    aliases: new SqliteAliasRepository(session),
    rotations: new SqliteRotationRepository(session),
    credentials: new SqliteCredentialRepository(session),
    auditCheckpoints: new SqliteAuditCheckpointRepository(session),
    tags: new SqliteTagRepository(session),
    imports: new SqliteImportRepository(session),
  };
}
