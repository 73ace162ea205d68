import type { ChangeFeed } from '../domain/coordination';
import type { AliasRepository } from '../domain/repositories';
import { FreshCache, type FreshCacheLimits } from '../fresh-cache';
import { KEY_CACHE_MAX_AGE_MS, KEY_CACHE_MAX_ENTRIES } from './key-cache';

/**
 * The key each alias (v2) names, as this process last read it: a request that names its key by
 * alias costs no store read more than one by id, when the alias was read lately (KeyCache then
 * gives the key). Bounded and existing aliases only (FreshCache: an unknown alias is never kept).
 *
 * The change feed names keys, not aliases: an alias's insert, move or removal announces the keys it
 * named and names. So ANY change empties this cache, whichever key it names: alias changes are
 * rare next to reads, the cache refills one read per alias in use, and a lost notification delays
 * what it would have shown by KEY_CACHE_MAX_AGE_MS at most, as KeyCache's.
 */
export class AliasCache {
  private readonly cache: FreshCache<string>;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: { readonly aliases: Pick<AliasRepository, 'get'>; readonly changes: ChangeFeed },
    limits: FreshCacheLimits = { maxAgeMs: KEY_CACHE_MAX_AGE_MS, maxEntries: KEY_CACHE_MAX_ENTRIES },
  ) {
    this.cache = new FreshCache(limits);
    this.unsubscribe = store.changes.subscribe(() => this.cache.invalidate());
  }

  /** The id of the key `alias` names in the project, whatever that key's state; undefined when it names none. */
  async keyIdOf(projectId: string, alias: string): Promise<string | undefined> {
    this.store.changes.poll();
    // A newline cannot be in a project id or an alias: the two parts never run together.
    return this.cache.get(`${projectId}\n${alias}`, async () => (await this.store.aliases.get(projectId, alias))?.keyId);
  }

  get size(): number {
    return this.cache.size;
  }

  close(): void {
    this.unsubscribe();
    this.cache.invalidate();
  }
}
