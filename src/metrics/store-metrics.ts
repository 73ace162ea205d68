import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { LeaseOutcome, StoreObserver, StoreStats } from '../domain/coordination';
import { JOBS } from '../kms/job-lease';

/**
 * A change reaches the other instances in about a millisecond on one machine, tens on a network,
 * and must within 1 s (the visibility promise); the sender's clock is read in whole milliseconds.
 */
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const OUTCOMES: readonly LeaseOutcome[] = ['claimed', 'held_elsewhere', 'lost'];

/** Where the scrape reads the store's state from (MetadataStore.stats). */
export interface StoreSource {
  stats(): StoreStats;
}

/**
 * The store's operations, as the store reports them through the seam (MetadataStore.observe and
 * stats), never by reaching into its driver: the connection pool (PostgreSQL; its gauges are
 * registered only once a store with a pool is watched, so SQLite shows none rather than zeros),
 * the change feed's lag and reconnects (PostgreSQL; SQLite's feed polls data_version, which says
 * neither when nor what changed, and has no connection to lose: they stay at zero there), and the
 * exactly-once jobs' lease outcomes (both stores). Summed across a cluster's workers: each has its
 * own pool, its own LISTEN connection (so each change is counted once per listening process), and
 * its own claims.
 */
export class StoreMetrics implements StoreObserver {
  private readonly lag: Histogram;
  private readonly reconnects: Counter;
  private readonly leases: Counter<'job' | 'outcome'>;
  private poolRegistered = false;

  constructor(private readonly registry: Registry) {
    const registers = [registry];
    this.lag = new Histogram({
      name: 'kms_change_feed_lag_seconds',
      help: "Time from a change's announcement (just before its commit, on the sender's clock) to its delivery here, by the change feed (PostgreSQL NOTIFY; not measured on SQLite).",
      buckets: LAG_BUCKETS,
      registers,
    });
    this.reconnects = new Counter({
      name: 'kms_change_feed_reconnects_total',
      help: "Times the change feed's connection was lost and listening resumed, the key cache flushed (PostgreSQL).",
      registers,
    });
    this.leases = new Counter({
      name: 'kms_job_lease_claims_total',
      help: "Exactly-once job leases by job and outcome: claimed; held_elsewhere (another holder's live lease); lost (a renewal found it expired and taken over).",
      labelNames: ['job', 'outcome'],
      registers,
    });
    for (const job of Object.values(JOBS)) for (const outcome of OUTCOMES) this.leases.inc({ job, outcome }, 0);
  }

  /** Reads the store's pool at every scrape from now on, when it has one. */
  watch(store: StoreSource): void {
    if (this.poolRegistered || store.stats().pool === undefined) return;
    this.poolRegistered = true;
    const registers = [this.registry];
    const pool = (): StoreStats['pool'] => store.stats().pool;
    const gauge = (name: string, help: string, read: (stats: NonNullable<StoreStats['pool']>) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const now = pool();
          if (now) this.set(read(now));
        },
      });
    };
    gauge('kms_database_pool_connections', 'Connections the PostgreSQL pool holds open, idle and in use.', (stats) => stats.total);
    gauge('kms_database_pool_idle_connections', 'Open connections of the PostgreSQL pool that no call is using.', (stats) => stats.idle);
    gauge('kms_database_pool_waiting_clients', 'Calls waiting for a connection of the PostgreSQL pool (all are in use).', (stats) => stats.waiting);
    gauge('kms_database_pool_max_connections', 'The most connections the PostgreSQL pool opens (KMS_DATABASE_POOL_SIZE).', (stats) => stats.max);
  }

  changeDelivered(seconds: number): void {
    this.lag.observe(seconds);
  }

  changeFeedReconnected(): void {
    this.reconnects.inc();
  }

  leaseOutcome(job: string, outcome: LeaseOutcome): void {
    this.leases.inc({ job, outcome });
  }
}
