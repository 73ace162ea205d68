import type { PostgresDatabaseConfig } from '../../src/config';
import type { MetadataStore } from '../../src/domain/repositories';
import { openPostgresStore, PostgresStore } from '../../src/store/postgres/postgres-store';
import { usePostgresCluster } from '../helpers/postgres-cluster';
import { describeStoreContract } from './store-contract';

/** The store contract suite on PostgreSQL: a throwaway cluster for this file, a fresh database per test. */

const cluster = usePostgresCluster();

function configOf(url: string): PostgresDatabaseConfig {
  return { kind: 'postgres', url, password: undefined, sslMode: 'disable', caFile: undefined, poolSize: 10 };
}

const databaseOf = new WeakMap<MetadataStore, string>();

async function open(url: string): Promise<PostgresStore> {
  const store = await openPostgresStore(configOf(url));
  databaseOf.set(store, url);
  return store;
}

describeStoreContract(
  'PostgreSQL',
  async () => open(await cluster().freshDatabase()),
  (store) => open(databaseOf.get(store)!),
);
