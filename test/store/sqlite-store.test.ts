import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StoreChange } from '../../src/domain/coordination';
import type { KeyRecord } from '../../src/domain/keys';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';

/**
 * What the SQLite store does beyond the contract every store keeps (test/store/store-contract.ts):
 * its two connections and write mutex, its change feed's data_version watch, and its leases and
 * bootstrap lock across two store instances (two processes, as far as the file is concerned).
 */

const NOW = 1_700_000_000_000;

let dir: string;
let file: string;
const opened: SqliteStore[] = [];

function open(): SqliteStore {
  const store = SqliteStore.open(file);
  opened.push(store);
  return store;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kms-sqlite-store-'));
  file = path.join(dir, 'kms.sqlite');
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function key(keyId: string, alias = keyId): KeyRecord {
  return {
    keyId,
    projectId: 'p1',
    alias,
    description: '',
    keySpec: 'AES_256',
    keyUsage: 'ENCRYPT_DECRYPT',
    origin: 'kms',
    state: '2',
    creationDate: NOW,
    scheduledDeletionDate: null,
    materialVersion: 0,
  };
}

async function visibleKey(store: SqliteStore, keyId: string): Promise<void> {
  await store.keys.insertProvisioning(key(keyId), 100);
  await store.keys.markProvisioned(keyId);
}

describe('transactions', () => {
  it('reads outside an open transaction see only what has committed', async () => {
    const store = open();
    await visibleKey(store, 'k1');
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let updated!: () => void;
    const written = new Promise<void>((resolve) => (updated = resolve));
    const transaction = store.withTransaction(async (tx) => {
      const current = (await tx.keys.get('p1', 'k1', { lock: true }))!;
      await tx.keys.update({ ...current, state: '3' });
      updated();
      await held;
    });
    await written;
    // Another request, while the transaction waits on an await.
    expect((await store.keys.get('p1', 'k1'))?.state).toBe('2');
    release();
    await transaction;
    expect((await store.keys.get('p1', 'k1'))?.state).toBe('3');
  });

  it('an atomic write asked for during an open transaction waits for it instead of failing busy', async () => {
    const store = open();
    await visibleKey(store, 'k1');
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const transaction = store.withTransaction(async (tx) => {
      await tx.keys.update({ ...key('k1'), description: 'in the transaction' });
      await held;
      order.push('transaction');
    });
    const write = store.keys.remove('k1').then(() => order.push('remove'));
    release();
    await Promise.all([transaction, write]);
    expect(order).toEqual(['transaction', 'remove']);
    expect(await store.keys.get('p1', 'k1')).toBeUndefined();
  });

  it('rolls back what the work wrote when it throws, and announces none of it', async () => {
    const store = open();
    await visibleKey(store, 'k1');
    const seen: StoreChange[] = [];
    store.changes.subscribe((change) => seen.push(change));
    await expect(
      store.withTransaction(async (tx) => {
        await tx.keys.update({ ...key('k1'), state: '3' });
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect((await store.keys.get('p1', 'k1'))?.state).toBe('2');
    expect(seen).toEqual([]);
  });
});

describe('change feed', () => {
  it("delivers this store's own writes by key, after they commit", async () => {
    const store = open();
    const seen: StoreChange[] = [];
    store.changes.subscribe((change) => seen.push(change));
    await visibleKey(store, 'k1');
    expect(seen).toEqual([{ kind: 'key', keyId: 'k1' }]);
    await store.withTransaction(async (tx) => {
      await tx.keys.update({ ...key('k1'), state: '3' });
      expect(seen).toHaveLength(1);
    });
    expect(seen).toEqual([{ kind: 'key', keyId: 'k1' }, { kind: 'key', keyId: 'k1' }]);
  });

  it("delivers another connection's commit as a change to anything on the next poll", async () => {
    const store = open();
    const other = open();
    const seen: StoreChange[] = [];
    store.changes.subscribe((change) => seen.push(change));
    store.changes.poll();
    await visibleKey(other, 'k1');
    // Asked at most once per turn of the event loop: the next turn sees it.
    await new Promise((resolve) => setImmediate(resolve));
    store.changes.poll();
    expect(seen).toEqual([{ kind: 'all' }]);
  });
});

describe('job leases', () => {
  it('gives an item to one holder until it is released or expires', async () => {
    const first = open();
    const second = open();
    const lease = await first.leases.tryClaim('deletion', 'k1', 60_000);
    expect(lease).toBeDefined();
    expect(await second.leases.tryClaim('deletion', 'k1', 60_000)).toBeUndefined();
    // Held is held, by this holder too.
    expect(await first.leases.tryClaim('deletion', 'k1', 60_000)).toBeUndefined();
    expect(await second.leases.tryClaim('deletion', 'k2', 60_000)).toBeDefined();
    await lease!.release();
    const next = await second.leases.tryClaim('deletion', 'k1', 60_000);
    expect(next).toBeDefined();
    // The first holder's lease is gone: it can neither renew nor release the second's.
    expect(await lease!.renew(60_000)).toBe(false);
    await lease!.release();
    expect(await first.leases.tryClaim('deletion', 'k1', 60_000)).toBeUndefined();
    expect(await next!.renew(60_000)).toBe(true);
  });

  it('lets another holder take a lease that expired', async () => {
    const first = open();
    const second = open();
    const lease = await first.leases.tryClaim('rollback', 'k1', -1);
    expect(lease).toBeDefined();
    expect(await second.leases.tryClaim('rollback', 'k1', 60_000)).toBeDefined();
    expect(await lease!.renew(60_000)).toBe(false);
  });
});

describe('bootstrap lock', () => {
  it('runs one holder at a time across store instances', async () => {
    const first = open();
    const second = open();
    const order: string[] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    const one = first.bootstrap.exclusive('token', async () => {
      order.push('first in');
      entered();
      await held;
      order.push('first out');
    });
    await inside;
    const two = second.bootstrap.exclusive('token', async () => {
      order.push('second in');
    });
    // The second waits (on a timer, not the event loop) while the first holds it.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(order).toEqual(['first in']);
    release();
    await Promise.all([one, two]);
    expect(order).toEqual(['first in', 'first out', 'second in']);
  });
});

it('keeps one audit checkpoint per instance, the last recorded (migration 6), and answers ping', async () => {
  const store = open();
  await store.auditCheckpoints.record({ instance: 'a', records: 3, head: 'h', at: NOW });
  await store.auditCheckpoints.record({ instance: 'a', records: 4, head: 'i', at: NOW + 1 });
  expect(await store.auditCheckpoints.all()).toEqual([{ instance: 'a', records: 4, head: 'i', at: NOW + 1 }]);
  await store.ping();
});
