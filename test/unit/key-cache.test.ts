import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ChangeFeed, StoreChange } from '../../src/domain/coordination';
import { KEY_STATE, type KeyRecord, type KeyState } from '../../src/domain/keys';
import type { MetadataStore } from '../../src/domain/repositories';
import { KeyCache } from '../../src/kms/key-cache';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';
import { eventually } from '../helpers/eventually';

/**
 * The key cache of the data-key path (src/kms/key-cache.ts): what another process changes (a
 * second store on the same database file, as the command-line tool or another worker has) shows
 * through the change feed, or at the latest once the backstop's age has passed when a notification
 * is lost; a feed that says it lost track empties it; it holds at most its bound.
 */

const NOW = 1_700_000_000_000;
const HOUR_MS = 3_600_000;

let dir: string;
const opened: MetadataStore[] = [];

function open(): MetadataStore {
  const store = SqliteStore.open(path.join(dir, 'kms.sqlite'));
  opened.push(store);
  return store;
}

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kms-key-cache-'));
});

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

function key(keyId: string): KeyRecord {
  return {
    keyId,
    projectId: 'p1',
    alias: keyId,
    description: '',
    keySpec: 'AES_256',
    keyUsage: 'ENCRYPT_DECRYPT',
    origin: 'kms',
    state: KEY_STATE.enabled,
    creationDate: NOW,
    scheduledDeletionDate: null,
    materialVersion: 0,
  };
}

async function visibleKey(store: MetadataStore, keyId: string): Promise<void> {
  await store.keys.insertProvisioning(key(keyId), 1000);
  await store.keys.markProvisioned(keyId);
}

/** A transition as KeyService makes it, by another process. */
async function setState(store: MetadataStore, keyId: string, state: KeyState, scheduledDeletionDate: number | null = null): Promise<void> {
  await store.withTransaction(async (tx) => {
    const current = (await tx.keys.get('p1', keyId, { lock: true }))!;
    await tx.keys.update({ ...current, state, scheduledDeletionDate });
  });
}

/** A change feed that delivers only what the test emits: notifications lost, or a feed that reconnected. */
class TestFeed implements ChangeFeed {
  private readonly listeners = new Set<(change: StoreChange) => void>();
  subscribe(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  poll(): void {}
  emit(change: StoreChange): void {
    for (const listener of this.listeners) listener(change);
  }
}

const stateOf = async (cache: KeyCache, keyId: string): Promise<KeyState | undefined> => (await cache.get('p1', keyId))?.state;

describe('another process changing a key', () => {
  it('is seen through the change feed: a disable, a scheduled deletion, a removal (with no backstop to help)', async () => {
    const here = open();
    const elsewhere = open();
    await visibleKey(elsewhere, 'k1');
    // An hour's backstop: only the feed can tell it.
    const cache = new KeyCache(here, { maxAgeMs: HOUR_MS, maxEntries: 100 });
    try {
      expect(await stateOf(cache, 'k1')).toBe(KEY_STATE.enabled);
      await setState(elsewhere, 'k1', KEY_STATE.disabled);
      await eventually('the disable seen', () => stateOf(cache, 'k1'), { until: (state) => state === KEY_STATE.disabled });
      await setState(elsewhere, 'k1', KEY_STATE.pendingDeletion, NOW + 7 * 24 * HOUR_MS);
      await eventually('the scheduled deletion seen', () => stateOf(cache, 'k1'), { until: (state) => state === KEY_STATE.pendingDeletion });
      await elsewhere.keys.remove('k1');
      await eventually('the removal seen', () => cache.get('p1', 'k1'), { until: (record) => record === undefined });
    } finally {
      cache.close();
    }
  });

  it('is seen once the backstop has passed when the notification is lost, and not before', async () => {
    const here = open();
    const elsewhere = open();
    await visibleKey(elsewhere, 'k1');
    let now = 0;
    const silent = new TestFeed();
    const cache = new KeyCache({ keys: here.keys, changes: silent }, { maxAgeMs: 1000, maxEntries: 100, now: () => now });
    try {
      expect(await stateOf(cache, 'k1')).toBe(KEY_STATE.enabled);
      await setState(elsewhere, 'k1', KEY_STATE.disabled);
      now = 999;
      expect(await stateOf(cache, 'k1')).toBe(KEY_STATE.enabled);
      now = 1000;
      expect(await stateOf(cache, 'k1')).toBe(KEY_STATE.disabled);
    } finally {
      cache.close();
    }
  });
});

describe('the change feed', () => {
  it('empties the cache when it says it lost track (all), and drops only the key a change names', async () => {
    const store = open();
    for (const keyId of ['k1', 'k2', 'k3']) await visibleKey(store, keyId);
    const feed = new TestFeed();
    const cache = new KeyCache({ keys: store.keys, changes: feed }, { maxAgeMs: HOUR_MS, maxEntries: 100 });
    try {
      for (const keyId of ['k1', 'k2', 'k3']) await cache.get('p1', keyId);
      expect(cache.size).toBe(3);
      feed.emit({ kind: 'key', keyId: 'k2' });
      expect(cache.size).toBe(2);
      feed.emit({ kind: 'all' });
      expect(cache.size).toBe(0);
    } finally {
      cache.close();
    }
  });

  it('keeps no record whose read started before a change it was told of', async () => {
    const store = open();
    await visibleKey(store, 'k1');
    const feed = new TestFeed();
    // A read that the change overtakes: it may carry the state from before the change.
    const keys = {
      get: async (projectId: string, keyId: string) => {
        const record = await store.keys.get(projectId, keyId);
        feed.emit({ kind: 'key', keyId });
        return record;
      },
    };
    const cache = new KeyCache({ keys, changes: feed }, { maxAgeMs: HOUR_MS, maxEntries: 100 });
    try {
      expect(await stateOf(cache, 'k1')).toBe(KEY_STATE.enabled);
      expect(cache.size).toBe(0);
    } finally {
      cache.close();
    }
  });
});

describe('its bound', () => {
  it('holds at most maxEntries keys, the least recently used going first, and never an unknown id', async () => {
    const store = open();
    const ids = ['k1', 'k2', 'k3', 'k4', 'k5'];
    for (const keyId of ids) await visibleKey(store, keyId);
    let reads = 0;
    const keys = {
      get: (projectId: string, keyId: string) => {
        reads++;
        return store.keys.get(projectId, keyId);
      },
    };
    const cache = new KeyCache({ keys, changes: new TestFeed() }, { maxAgeMs: HOUR_MS, maxEntries: 3 });
    try {
      for (const keyId of ['k1', 'k2', 'k3']) await cache.get('p1', keyId);
      // k1 used again: k2 is now the least recently used.
      await cache.get('p1', 'k1');
      await cache.get('p1', 'k4');
      expect(cache.size).toBe(3);
      reads = 0;
      await cache.get('p1', 'k1');
      await cache.get('p1', 'k4');
      expect(reads).toBe(0);
      await cache.get('p1', 'k2');
      expect(reads).toBe(1);
      for (const keyId of ids) await cache.get('p1', keyId);
      expect(cache.size).toBe(3);
      // A flood of ids that name no key (or another project's) reads the store each time and keeps nothing.
      for (let i = 0; i < 1000; i++) expect(await cache.get('p1', `unknown-${i}`)).toBeUndefined();
      expect(await cache.get('p2', 'k5')).toBeUndefined();
      expect(cache.size).toBe(3);
    } finally {
      cache.close();
    }
  });
});
