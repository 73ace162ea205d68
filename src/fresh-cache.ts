/** How many entries a FreshCache holds, how long one is trusted, and what tells the time. */
export interface FreshCacheLimits {
  /** An entry older than this is read again: the backstop against a change notification that was lost. */
  readonly maxAgeMs: number;
  /** Entries held at most; beyond it the least recently used goes. */
  readonly maxEntries: number;
  /** Milliseconds on a monotonic clock (performance.now unless a test gives its own). */
  readonly now?: () => number;
}

interface Entry<V> {
  readonly value: V;
  /** now() when the read that gave it started. */
  readonly at: number;
}

/**
 * Records read from the store, kept by this process for at most `maxAgeMs` and at most
 * `maxEntries` of them (least recently used first out), for the caches of the request path
 * (src/kms/key-cache.ts, src/identity/credential-cache.ts). Only what exists is kept: a read that
 * finds nothing is not cached, so a flood of unknown names cannot grow it. Its owner forgets
 * entries when the store's change feed says they changed (invalidate); a read already under way
 * then is not kept, since it may have read the state from before the change.
 */
export class FreshCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  /** Moves at every invalidation: a read that started before one is not kept. */
  private generation = 0;
  private readonly now: () => number;

  constructor(private readonly limits: FreshCacheLimits) {
    if (!(limits.maxEntries >= 1)) throw new RangeError(`a cache holds at least one entry, not ${limits.maxEntries}`);
    this.now = limits.now ?? (() => performance.now());
  }

  /** The entry of `key` when it is fresh, else what `read` gives (kept when it is something). */
  async get(key: string, read: () => Promise<V | undefined>): Promise<V | undefined> {
    const at = this.now();
    const entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      if (at - entry.at < this.limits.maxAgeMs) {
        // Back at the end of the map's order: the most recently used.
        this.entries.set(key, entry);
        return entry.value;
      }
    }
    const generation = this.generation;
    const value = await read();
    if (value !== undefined && generation === this.generation) {
      this.entries.delete(key);
      if (this.entries.size >= this.limits.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(key, { value, at });
    }
    return value;
  }

  /** Forgets `key`'s entry, or every entry without one. */
  invalidate(key?: string): void {
    this.generation++;
    if (key === undefined) this.entries.clear();
    else this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
