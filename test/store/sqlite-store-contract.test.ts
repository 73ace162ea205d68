import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MetadataStore } from '../../src/domain/repositories';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { describeStoreContract } from './store-contract';

/**
 * The store contract suite on SQLite, the embedded store: a fresh database file per test, and a
 * second SqliteStore on the same file for what another process sees (SQLite-only behaviour is
 * sqlite-store.test.ts's).
 */

const dirs: string[] = [];
const fileOf = new WeakMap<MetadataStore, string>();

function open(file: string): SqliteStore {
  const store = SqliteStore.open(file);
  fileOf.set(store, file);
  return store;
}

afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describeStoreContract(
  'SQLite',
  async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kms-store-contract-'));
    dirs.push(dir);
    return open(path.join(dir, 'kms.sqlite'));
  },
  async (store) => open(fileOf.get(store)!),
);
