/**
 * What processes and instances sharing one store coordinate through, one implementation per store
 * (src/domain/repositories.ts, MetadataStore).
 */

/** A committed change: to one key (its record, material version or grants), or to anything. */
export type StoreChange = { readonly kind: 'key'; readonly keyId: string } | { readonly kind: 'all' };

/**
 * "Key K changed", delivered to every process of every instance, this one's included, once the
 * change has committed. `all` when the store cannot say what changed: SQLite's data_version says
 * only that another connection committed, and after a lost connection anything may have been
 * missed. Caches drop what a change names, and everything on `all`.
 */
export interface ChangeFeed {
  /** Returns the unsubscribe function. Listeners are called synchronously and must not throw. */
  subscribe(listener: (change: StoreChange) => void): () => void;
  /**
   * Delivers what has committed and not been delivered yet, where the store must be asked (SQLite:
   * PRAGMA data_version, at most once per event-loop turn). Where changes arrive by themselves
   * (PostgreSQL's LISTEN), it does nothing. Caches call it before each read.
   */
  poll(): void;
}

/**
 * Exactly-once work across instances: an item of a job (a key to delete, a rotation to roll back)
 * is done by whoever holds its lease. A lease lasts `ttlMs` unless its holder renews it; a holder
 * that dies loses it when it expires, and another instance takes the item up.
 */
export interface JobLeases {
  /** The lease of `item` in `job`, unless a live lease of another holder has it. */
  tryClaim(job: string, item: string, ttlMs: number): Promise<JobLease | undefined>;
}

export interface JobLease {
  readonly job: string;
  readonly item: string;
  /** Extends the lease; false when it was lost (expired and taken by another holder). */
  renew(ttlMs: number): Promise<boolean>;
  /** Ends the lease, if this holder still has it. */
  release(): Promise<void>;
}

/**
 * One-at-a-time work across every process and instance of one store: the first start's token
 * set-up and system keys, migrations. Held until `work` settles; released if the process dies.
 */
export interface BootstrapLock {
  exclusive<T>(name: string, work: () => Promise<T>): Promise<T>;
}

/** What became of a lease: claimed; held elsewhere (a live lease of another holder); lost on renewal (it expired and was taken over). */
export type LeaseOutcome = 'claimed' | 'held_elsewhere' | 'lost';

/**
 * What a store tells of its coordination as it happens (the metrics listen, MetadataStore.observe).
 * Called synchronously; an observer must not throw.
 */
export interface StoreObserver {
  /**
   * A change committed by this or another process reached this one, `seconds` after its sender
   * announced it (PostgreSQL: the sender's clock, carried in the NOTIFY, against this one's).
   * Stores that cannot say when a change was made (SQLite's data_version) never call it.
   */
  changeDelivered(seconds: number): void;
  /** The change feed lost its connection and listens again (caches were flushed). */
  changeFeedReconnected(): void;
  /** A claim of a job item's lease (claimed or held elsewhere), or a renewal that found it lost. */
  leaseOutcome(job: string, outcome: LeaseOutcome): void;
}

/** A connection pool's state (PostgreSQL's; SQLite has none). */
export interface PoolStats {
  /** Connections open, idle and in use. */
  readonly total: number;
  readonly idle: number;
  /** The most the pool opens (KMS_DATABASE_POOL_SIZE). */
  readonly max: number;
  /** Calls waiting for a connection. */
  readonly waiting: number;
}

/** What a store holds now, read at scrape time. */
export interface StoreStats {
  readonly pool?: PoolStats;
}
