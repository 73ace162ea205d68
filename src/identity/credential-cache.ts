import type { CredentialRecord } from '../domain/credentials';
import type { MetadataStore } from '../domain/repositories';
import { FreshCache } from '../fresh-cache';

/** How long a cached credential is trusted without a change notification: the backstop against a lost one. */
export const CREDENTIAL_CACHE_MAX_AGE_MS = 1000;
/** Credentials cached at most (by id and by token hash together); the least recently used goes first beyond it. */
export const CREDENTIAL_CACHE_MAX_ENTRIES = 10_000;

/**
 * Credentials of this process, by id and by token hash: every request reads one, and a hit costs
 * no store read. Bounded and existing credentials only (FreshCache: unknown ids are not kept, so a
 * flood of them cannot grow it). Credential writes are announced as changes to anything (the feed
 * names only keys), so `all` empties it; an entry older than CREDENTIAL_CACHE_MAX_AGE_MS is read
 * again, so that a lost notification delays a disabled credential's refusal by at most that.
 */
export class CredentialCache {
  private readonly cache = new FreshCache<CredentialRecord>({ maxAgeMs: CREDENTIAL_CACHE_MAX_AGE_MS, maxEntries: CREDENTIAL_CACHE_MAX_ENTRIES });
  private readonly unsubscribe: () => void;

  constructor(private readonly store: Pick<MetadataStore, 'credentials' | 'changes'>) {
    this.unsubscribe = store.changes.subscribe((change) => {
      if (change.kind === 'all') this.cache.invalidate();
    });
  }

  get(id: string): Promise<CredentialRecord | undefined> {
    this.store.changes.poll();
    return this.cache.get(`id:${id}`, () => this.store.credentials.get(id));
  }

  getByTokenHash(tokenHash: string): Promise<CredentialRecord | undefined> {
    this.store.changes.poll();
    return this.cache.get(`token:${tokenHash}`, () => this.store.credentials.getByTokenHash(tokenHash));
  }

  close(): void {
    this.unsubscribe();
    this.cache.invalidate();
  }
}
