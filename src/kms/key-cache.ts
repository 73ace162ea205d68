import type { KeyRecord } from '../domain/keys';
import type { MetadataStore } from '../domain/repositories';

/** How long a cached record is trusted without a change notification: the backstop against a lost one. */
export const KEY_CACHE_MAX_AGE_MS = 1000;
/** Keys cached at most; the oldest entry goes first beyond it. */
export const KEY_CACHE_MAX_ENTRIES = 10_000;

interface Entry {
  readonly record: KeyRecord;
  /** performance.now() when it was read. */
  readonly at: number;
}

/**
 * Visible key records of this process, by key id: every data-key request reads one, and a hit
 * costs no database read. Only records that exist are cached (a flood of unknown ids must not
 * grow it), at most KEY_CACHE_MAX_ENTRIES. The store's change feed empties it: the key a change
 * names, or everything on `all`. An entry older than KEY_CACHE_MAX_AGE_MS is read again, so a
 * notification that is lost delays what it would have shown by at most that.
 *
 * Changes read within a transaction are never cached from here: transitions read the store
 * itself (tx.keys.get with lock), and their commit announces the key.
 */
export class KeyCache {
  private readonly entries = new Map<string, Entry>();
  /** Moves at every change notification: a read that started before one is not cached. */
  private generation = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: Pick<MetadataStore, 'keys' | 'changes'>,
    private readonly limits: { readonly maxAgeMs: number; readonly maxEntries: number } = { maxAgeMs: KEY_CACHE_MAX_AGE_MS, maxEntries: KEY_CACHE_MAX_ENTRIES },
  ) {
    this.unsubscribe = store.changes.subscribe((change) => {
      this.generation++;
      if (change.kind === 'all') this.entries.clear();
      else this.entries.delete(change.keyId);
    });
  }

  /** The visible key of the project (as KeyRepository.get), from the cache when it is fresh. */
  async get(projectId: string, keyId: string): Promise<KeyRecord | undefined> {
    this.store.changes.poll();
    const entry = this.entries.get(keyId);
    if (entry && performance.now() - entry.at < this.limits.maxAgeMs) {
      // Key ids are the server's own and unique: another project's key is no key of this one.
      return entry.record.projectId === projectId ? entry.record : undefined;
    }
    const generation = this.generation;
    const at = performance.now();
    const record = await this.store.keys.get(projectId, keyId);
    if (record && generation === this.generation) {
      this.entries.delete(keyId);
      if (this.entries.size >= this.limits.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(keyId, { record, at });
    }
    return record;
  }

  /** Stops listening to the change feed. */
  close(): void {
    this.unsubscribe();
    this.entries.clear();
  }
}
