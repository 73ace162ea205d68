import type { ChangeFeed } from '../domain/coordination';
import type { KeyRecord } from '../domain/keys';
import type { KeyRepository } from '../domain/repositories';
import { FreshCache, type FreshCacheLimits } from '../fresh-cache';

/** How long a cached record is trusted without a change notification: the backstop against a lost one. */
export const KEY_CACHE_MAX_AGE_MS = 1000;
/** Keys cached at most; the least recently used goes first beyond it. */
export const KEY_CACHE_MAX_ENTRIES = 10_000;

/**
 * Visible key records of this process, by key id: every data-key and small-data request reads
 * one (KeyService.visibleKey), and a hit costs no store read. Bounded and existing keys only
 * (FreshCache). The store's change feed empties it: the key a change names, or everything on
 * `all` (what the store says when it cannot name the change: another process's commit seen
 * through SQLite's data_version, or a feed that reconnected and may have missed notifications).
 * An entry older than KEY_CACHE_MAX_AGE_MS is read again, so a notification that is lost delays
 * what it would have shown (a key disabled or scheduled for deletion elsewhere) by at most that.
 *
 * Transitions never read from here: they read the store itself (tx.keys.get with lock), and their
 * commit announces the key.
 */
export class KeyCache {
  private readonly cache: FreshCache<KeyRecord>;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: { readonly keys: Pick<KeyRepository, 'get'>; readonly changes: ChangeFeed },
    limits: FreshCacheLimits = { maxAgeMs: KEY_CACHE_MAX_AGE_MS, maxEntries: KEY_CACHE_MAX_ENTRIES },
  ) {
    this.cache = new FreshCache(limits);
    this.unsubscribe = store.changes.subscribe((change) => this.cache.invalidate(change.kind === 'all' ? undefined : change.keyId));
  }

  /** The visible key of the project (as KeyRepository.get), from the cache when it is fresh. */
  async get(projectId: string, keyId: string): Promise<KeyRecord | undefined> {
    // Delivers what other processes committed since the last look (SQLite: once per event-loop turn).
    this.store.changes.poll();
    // By key id alone: ids are the server's own and unique, so another project's key is no key of
    // this one (and a project cannot fill the cache with another's misses: those are not kept).
    const record = await this.cache.get(keyId, () => this.store.keys.get(projectId, keyId));
    return record?.projectId === projectId ? record : undefined;
  }

  /** How many records it holds (for the tests of its bound). */
  get size(): number {
    return this.cache.size;
  }

  /** Stops listening to the change feed. */
  close(): void {
    this.unsubscribe();
    this.cache.invalidate();
  }
}
