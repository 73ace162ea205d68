/**
 * The store's operations metrics (src/metrics/store-metrics.ts), as the store reports them through
 * the seam (MetadataStore.observe and stats): on PostgreSQL the pool's connections and waiters, the
 * change feed's lag and reconnects; on both stores the exactly-once jobs' lease outcomes. A real
 * service, scraped on the API's port; PostgreSQL on a throwaway cluster (softhsm project only, as
 * test/api/postgres.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { Registry } from 'prom-client';
import { loadConfig } from '../../src/config';
import { JOBS } from '../../src/kms/job-lease';
import { StoreMetrics } from '../../src/metrics/store-metrics';
import type { MetadataStore } from '../../src/domain/repositories';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { createKeyId, fetchResponse } from '../helpers/client';
import { eventually } from '../helpers/eventually';
import { Metrics } from '../helpers/metrics';
import { usePostgresCluster } from '../helpers/postgres-cluster';
import { useTestService, type TestService } from '../helpers/service';

const TOKEN = 'store-metrics-token-0123456789abcdef';
const POOL_SIZE = 4;

const cluster = usePostgresCluster();
let tokenDir: string;
let tokenFile: string;

beforeAll(() => {
  tokenDir = mkdtempSync(path.join(tmpdir(), 'kms-metrics-token-'));
  tokenFile = path.join(tokenDir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
});

afterAll(() => {
  rmSync(tokenDir, { recursive: true, force: true });
});

async function scrape(t: TestService): Promise<Metrics> {
  const response = await fetchResponse(`${t.service.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(response.status).toBe(200);
  return Metrics.parse(response.body as string);
}

async function createKey(t: TestService, alias: string): Promise<string> {
  return createKeyId(t.client(), alias);
}

const claims = (outcome: string): Record<string, string> => ({ job: JOBS.deletion, outcome });

/**
 * Claims through the service's own store, as its sweeps do: claimed, then held elsewhere while that
 * lease lives, then a lease of 1 ms that expires and is taken over by `other` (another instance's
 * store, whose claims this service does not count), whose renewal here finds it lost.
 */
async function leaseOutcomes(t: TestService, other: MetadataStore): Promise<void> {
  const { leases } = t.service.store;
  const before = await scrape(t);
  const held = await leases.tryClaim(JOBS.deletion, 'metrics-held', 60_000);
  expect(held).toBeDefined();
  expect(await other.leases.tryClaim(JOBS.deletion, 'metrics-held', 60_000)).toBeUndefined();
  expect(await leases.tryClaim(JOBS.deletion, 'metrics-held', 60_000)).toBeUndefined();
  await held!.release();
  const short = await leases.tryClaim(JOBS.deletion, 'metrics-lost', 1);
  expect(short).toBeDefined();
  const successor = await eventually('the 1 ms lease to expire and be taken over', () => other.leases.tryClaim(JOBS.deletion, 'metrics-lost', 60_000));
  expect(await short!.renew(60_000)).toBe(false);
  await successor!.release();
  const after = await scrape(t);
  expect({
    claimed: after.delta(before, 'kms_job_lease_claims_total', claims('claimed')),
    heldElsewhere: after.delta(before, 'kms_job_lease_claims_total', claims('held_elsewhere')),
    lost: after.delta(before, 'kms_job_lease_claims_total', claims('lost')),
  }).toEqual({ claimed: 2, heldElsewhere: 1, lost: 1 });
  // Every job is there from the start, at zero until it happens.
  for (const job of Object.values(JOBS)) expect(after.value('kms_job_lease_claims_total', { job, outcome: 'lost' })).toBeDefined();
}

/** A second store on the service's PostgreSQL database, as another instance opens it. */
async function otherPostgresStore(t: TestService, databaseUrl: string, poolSize = 2): Promise<PostgresStore> {
  const config = loadConfig({ KMS_DATA_DIR: t.dataDir, KMS_DATABASE_URL: databaseUrl, KMS_DATABASE_POOL_SIZE: String(poolSize) });
  if (config.database.kind !== 'postgres') throw new Error('not configured for PostgreSQL');
  return openPostgresStore(config.database);
}

describe('on PostgreSQL', () => {
  let databaseUrl: string;
  const t = useTestService(async () => {
    databaseUrl = await cluster().freshDatabase();
    return { env: { KMS_DATABASE_URL: databaseUrl, KMS_DATABASE_POOL_SIZE: String(POOL_SIZE), KMS_METRICS_TOKEN_FILE: tokenFile } };
  }, 60_000);

  it("shows the pool's size, open, idle and waiting connections, read at scrape time", async () => {
    const metrics = await scrape(t);
    expect(metrics.value('kms_database_pool_max_connections')).toBe(POOL_SIZE);
    const open = metrics.value('kms_database_pool_connections')!;
    const idle = metrics.value('kms_database_pool_idle_connections')!;
    expect(open).toBeGreaterThanOrEqual(1);
    expect(open).toBeLessThanOrEqual(POOL_SIZE);
    expect(idle).toBeGreaterThanOrEqual(0);
    expect(idle).toBeLessThanOrEqual(open);
    expect(metrics.value('kms_database_pool_waiting_clients')).toBeDefined();
  });

  it("times each change's way through the feed: a disable on this instance is heard back by its LISTEN", async () => {
    const keyId = await createKey(t, 'lag');
    const before = await scrape(t);
    expect((await t.client().call('disable-key', { key_id: keyId })).status).toBe(200);
    const after = await eventually('the disable to be delivered and timed', () => scrape(t), {
      until: (now) => now.delta(before, 'kms_change_feed_lag_seconds_count') >= 1,
    });
    // Every delivery is in the histogram's last bucket, and took no negative time.
    expect(after.delta(before, 'kms_change_feed_lag_seconds_bucket', { le: '+Inf' })).toBe(after.delta(before, 'kms_change_feed_lag_seconds_count'));
    expect(after.delta(before, 'kms_change_feed_lag_seconds_sum')).toBeGreaterThanOrEqual(0);
  });

  it("counts the change feed's reconnects: its connection killed by the server, it listens again", async () => {
    const before = await scrape(t);
    expect(before.value('kms_change_feed_reconnects_total')).toBe(0);
    const admin = new Client({ connectionString: databaseUrl });
    await admin.connect();
    try {
      // The service's one LISTEN connection on this database (the test opens no other store here).
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
      );
      expect(killed.rowCount).toBe(1);
    } finally {
      await admin.end();
    }
    await eventually('the change feed to listen again', () => scrape(t), { until: (now) => now.value('kms_change_feed_reconnects_total') === 1 });
  });

  it('counts lease outcomes by job: claimed, held elsewhere, lost on renewal', async () => {
    const other = await otherPostgresStore(t, databaseUrl);
    try {
      await leaseOutcomes(t, other);
    } finally {
      await other.close();
    }
  });

  it('reads the waiting clients from the pool: all connections held, one more call waits', async () => {
    // A store of its own (as another instance), so that no background write of the service's joins the count.
    const store = await otherPostgresStore(t, databaseUrl);
    const registry = new Registry();
    new StoreMetrics(registry).watch(store);
    const read = async (): Promise<Metrics> => Metrics.parse(await registry.metrics());
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    try {
      const holding: Promise<void>[] = [];
      for (let i = 0; i < 2; i++) holding.push(store.withTransaction(() => gate));
      const waiter = store.ping();
      const held = await eventually('both connections held and one call waiting', read, {
        until: (now) => now.value('kms_database_pool_waiting_clients') === 1,
      });
      expect({
        open: held.value('kms_database_pool_connections'),
        idle: held.value('kms_database_pool_idle_connections'),
        max: held.value('kms_database_pool_max_connections'),
      }).toEqual({ open: 2, idle: 0, max: 2 });
      release();
      await Promise.all([...holding, waiter]);
      const freed = await read();
      expect({
        open: freed.value('kms_database_pool_connections'),
        idle: freed.value('kms_database_pool_idle_connections'),
        waiting: freed.value('kms_database_pool_waiting_clients'),
      }).toEqual({ open: 2, idle: 2, waiting: 0 });
    } finally {
      release();
      await store.close();
    }
  });
});

describe('on SQLite', () => {
  // A function: the token file is made by the file's beforeAll, after this describe is declared.
  const t = useTestService(() => ({ env: { KMS_METRICS_TOKEN_FILE: tokenFile } }));

  it('has no pool to show, and times no change (data_version says neither when nor what)', async () => {
    const keyId = await createKey(t, 'no-lag');
    expect((await t.client().call('disable-key', { key_id: keyId })).status).toBe(200);
    const metrics = await scrape(t);
    expect(metrics.all('kms_database_pool_connections')).toEqual([]);
    expect(metrics.all('kms_database_pool_waiting_clients')).toEqual([]);
    expect(metrics.value('kms_change_feed_lag_seconds_count')).toBe(0);
    expect(metrics.value('kms_change_feed_reconnects_total')).toBe(0);
  });

  it('counts lease outcomes by job: claimed, held elsewhere, lost on renewal', async () => {
    // Another process's store on the same file: SQLite's lease holder is per store, not per claim.
    const other = SqliteStore.open(t.config.databasePath);
    try {
      await leaseOutcomes(t, other);
    } finally {
      await other.close();
    }
  });
});
