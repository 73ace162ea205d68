/**
 * Where the data-key cache keeps its entries: an LRU map of at most `capacity` entries that zeroes an
 * entry's plaintext data key whenever the entry leaves (evicted, past its age, deleted, swept or closed).
 *
 * It replaces the library's getLocalCryptographicMaterialsCache, which drops an expired entry only
 * when it is looked up (or, once a minute, only if it is the LRU tail): after traffic stopped, up to
 * `capacity` plaintext data keys stayed in memory past maxAge, and its timer chain kept the cache
 * reachable for the life of the process, with no way to empty it. Here an unref'd timer sweeps
 * expired entries (so an idle key is zeroed within SWEEP_MS of its age), and close() empties the
 * store and stops the timer.
 */
import type { NodeCachingMaterialsManager } from '@aws-crypto/caching-materials-manager-node';

/** The cache interface NodeCachingMaterialsManager takes (not exported under its own name by the node package). */
type MaterialsCache = NodeCachingMaterialsManager['_cache'];
type EncryptionEntry = Exclude<ReturnType<MaterialsCache['getEncryptionMaterial']>, false>;
type DecryptionEntry = Exclude<ReturnType<MaterialsCache['getDecryptionMaterial']>, false>;
type Stored = { readonly kind: 'encrypt'; readonly entry: EncryptionEntry } | { readonly kind: 'decrypt'; readonly entry: DecryptionEntry };

/** How often expired entries are swept at most: an idle key outlives its maxAge by up to this much. */
export const SWEEP_MS = 1000;

export class ZeroingKeyStore implements MaterialsCache {
  private readonly entries = new Map<string, Stored & { readonly expires: number }>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly capacity: number,
    maxAgeMs: number,
  ) {
    // unref: a cache must not keep the application's process alive.
    this.timer = setInterval(() => this.sweep(), Math.min(maxAgeMs, SWEEP_MS)).unref();
  }

  /** Entries held now (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  putEncryptionMaterial(key: string, response: EncryptionEntry['response'], plaintextLength: number, maxAge?: number): void {
    this.put(key, { kind: 'encrypt', entry: Object.seal({ response, bytesEncrypted: plaintextLength, messagesEncrypted: 1, now: Date.now() }) }, maxAge);
  }

  putDecryptionMaterial(key: string, response: DecryptionEntry['response'], maxAge?: number): void {
    this.put(key, { kind: 'decrypt', entry: Object.seal({ response, bytesEncrypted: 0, messagesEncrypted: 0, now: Date.now() }) }, maxAge);
  }

  putBranchKeyMaterial(): void {
    throw new Error('branch key material is not cached by this client');
  }

  getBranchKeyMaterial(): false {
    return false;
  }

  getEncryptionMaterial(key: string, plaintextLength: number): EncryptionEntry | false {
    const stored = this.touch(key);
    if (!stored || stored.kind !== 'encrypt') return false;
    // As the library's cache does: a lookup counts the message against the entry's limits.
    stored.entry.bytesEncrypted += plaintextLength;
    stored.entry.messagesEncrypted += 1;
    return stored.entry;
  }

  getDecryptionMaterial(key: string): DecryptionEntry | false {
    const stored = this.touch(key);
    return stored && stored.kind === 'decrypt' ? stored.entry : false;
  }

  del(key: string): void {
    const stored = this.entries.get(key);
    if (!stored) return;
    this.entries.delete(key);
    stored.entry.response.zeroUnencryptedDataKey();
  }

  /** Zeroes and drops every expired entry. */
  sweep(now = Date.now()): void {
    for (const [key, stored] of this.entries) if (stored.expires <= now) this.del(key);
  }

  /** Zeroes and drops every entry and stops the sweep; later puts are not kept (nothing is cached again). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const key of [...this.entries.keys()]) this.del(key);
  }

  private put(key: string, stored: Stored, maxAge: number | undefined): void {
    if (this.closed) {
      // The caching manager clones this material for the message right after the put (synchronously)
      // and leaves this copy to the cache: zero it once that clone is made.
      queueMicrotask(() => stored.entry.response.zeroUnencryptedDataKey());
      return;
    }
    this.del(key);
    this.entries.set(key, { ...stored, expires: Date.now() + (maxAge ?? Number.POSITIVE_INFINITY) });
    // A Map keeps insertion order, and touch() re-inserts: the first key is the least recently used.
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.capacity) break;
      this.del(oldest);
    }
  }

  /** The entry, moved to most recently used; an expired one is dropped (and zeroed) instead. */
  private touch(key: string): (Stored & { readonly expires: number }) | undefined {
    const stored = this.entries.get(key);
    if (!stored) return undefined;
    if (stored.expires <= Date.now()) {
      this.del(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, stored);
    return stored;
  }
}
