import { rmSync } from 'node:fs';
import { Client } from 'pg';
import type { PostgresDatabaseConfig } from '../../src/config';
import type { StoreChange } from '../../src/domain/coordination';
import { StoreUnavailableError } from '../../src/domain/store-errors';
import { clientConfig } from '../../src/store/postgres/connection';
import { MIGRATIONS } from '../../src/store/postgres/migrations';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/postgres-store';
import { TestPki, type Issued } from '../helpers/certificates';
import { eventually } from '../helpers/eventually';
import { usePostgresCluster } from '../helpers/postgres-cluster';

/**
 * What the PostgreSQL store does beyond the contract every store keeps (store-contract.ts): its
 * migrations when several instances start at once, its change feed's reconnection, its answer
 * when the server is down, its pool's size, and TLS to the server (the cluster has it on; plain
 * connections are still accepted).
 */

let pki: TestPki;
let serverCa: Issued;
const cluster = usePostgresCluster(() => {
  pki = new TestPki();
  serverCa = pki.ca('database-ca');
  const server = pki.server('database', serverCa);
  return { tls: { certFile: server.certFile, keyFile: server.keyFile } };
});
afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));
const opened: PostgresStore[] = [];

function configOf(url: string, poolSize = 10): PostgresDatabaseConfig {
  return { kind: 'postgres', url, password: undefined, sslMode: 'disable', caFile: undefined, poolSize };
}

async function open(url: string, poolSize?: number): Promise<PostgresStore> {
  const store = await openPostgresStore(configOf(url, poolSize));
  opened.push(store);
  return store;
}

async function query<R>(url: string, text: string): Promise<R[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as R[];
  } finally {
    await client.end();
  }
}

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});

it('migrates an empty database once when several instances start at once', async () => {
  const url = await cluster().freshDatabase();
  await Promise.all(Array.from({ length: 6 }, () => open(url)));
  const versions = await query<{ version: number }>(url, 'SELECT version FROM schema_migrations ORDER BY version');
  expect(versions.map((row) => row.version)).toEqual(MIGRATIONS.map((_, index) => index + 1));
  // And a later start finds nothing to do.
  await open(url);
  expect(await query(url, 'SELECT count(*)::int AS n FROM schema_migrations')).toEqual([{ n: MIGRATIONS.length }]);
});

it('sizes its pool by the configuration', async () => {
  const store = await open(await cluster().freshDatabase(), 3);
  expect(store.poolStats().max).toBe(3);
  // More calls than connections wait for one, and all are answered.
  await Promise.all(Array.from({ length: 12 }, () => store.ping()));
  expect(store.poolStats().total).toBeLessThanOrEqual(3);
});

it("reconnects its change feed when the connection is lost, says 'all' changed, and hears changes again", async () => {
  const url = await cluster().freshDatabase();
  const store = await open(url);
  const other = await open(url);
  const heard: StoreChange[] = [];
  store.changes.subscribe((change) => heard.push(change));
  // The feed's LISTEN connection, killed by the server as a restart or a network cut would.
  const killed = await query<{ killed: boolean }>(url, "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE query LIKE 'LISTEN%'");
  expect(killed.length).toBeGreaterThanOrEqual(2);
  await eventually("the feed to report 'all' after it reconnected", () => heard.some((change) => change.kind === 'all'));
  expect(store.changes.reconnections).toBe(1);
  expect(store.changes.listening).toBe(true);
  heard.splice(0);
  await other.credentials.insert({
    id: 'AKAFTERTHECUT',
    kind: 'aksk',
    projectId: 'p',
    actions: ['kms:*'],
    description: '',
    sealedSecret: Buffer.alloc(44),
    tokenHash: null,
    createdAt: 1,
    expiresAt: null,
  });
  await eventually('a change made after the reconnection to be heard', () => heard.length > 0);
});

it('answers StoreUnavailableError while the server is down, and serves again once it is back', async () => {
  const url = await cluster().freshDatabase();
  const store = await open(url);
  await store.ping();
  cluster().pause();
  try {
    await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.keys.get('p', 'k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.withTransaction((tx) => tx.keys.get('p', 'k'))).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(openPostgresStore(configOf(url))).rejects.toBeInstanceOf(StoreUnavailableError);
  } finally {
    cluster().resume();
  }
  await eventually('the store to answer again', () => store.ping().then(() => true, () => false));
  expect(await store.keys.get('p', 'k')).toBeUndefined();
});

describe('TLS to the database', () => {
  async function usesTls(config: PostgresDatabaseConfig): Promise<boolean> {
    const client = new Client(clientConfig(config));
    await client.connect();
    try {
      const { rows } = await client.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      return rows[0]!.ssl;
    } finally {
      await client.end();
    }
  }

  it('verifies the server against KMS_DATABASE_CA_FILE (verify-full), and its connections are encrypted', async () => {
    const url = await cluster().freshDatabase();
    for (const host of ['127.0.0.1', 'localhost']) {
      const config: PostgresDatabaseConfig = { ...configOf(url.replace('127.0.0.1', host)), sslMode: 'verify-full', caFile: serverCa.certFile };
      expect(await usesTls(config)).toBe(true);
      const store = await openPostgresStore(config);
      opened.push(store);
      await store.ping();
    }
    expect(await usesTls(configOf(url))).toBe(false);
  });

  it('refuses a server whose certificate another CA signed', async () => {
    const url = await cluster().freshDatabase();
    const otherCa = pki.ca('another-ca');
    for (const sslMode of ['verify-full', 'verify-ca', 'require'] as const) {
      await expect(openPostgresStore({ ...configOf(url), sslMode, caFile: otherCa.certFile })).rejects.toThrow(/certificate/i);
    }
  });
});
