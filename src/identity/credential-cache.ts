import type { CredentialRecord } from '../domain/credentials';
import type { MetadataStore } from '../domain/repositories';

/** How long a cached credential is trusted without a change notification: the backstop against a lost one. */
export const CREDENTIAL_CACHE_MAX_AGE_MS = 1000;
/** Credentials cached at most (by id and by token hash together); the oldest entry goes first beyond it. */
export const CREDENTIAL_CACHE_MAX_ENTRIES = 10_000;

interface Entry {
  readonly record: CredentialRecord;
  readonly at: number;
}

/**
 * Credentials of this process, by id and by token hash: every request reads one, and a hit costs
 * no database read. Only credentials that exist are cached (unknown ids are not: a flood of them
 * must not grow it). Credential writes are announced as changes to anything (the feed names only
 * keys), so `all` empties it; an entry older than CREDENTIAL_CACHE_MAX_AGE_MS is read again, so
 * that a lost notification delays a disabled credential's refusal by at most that.
 */
export class CredentialCache {
  private readonly entries = new Map<string, Entry>();
  private generation = 0;
  private readonly unsubscribe: () => void;

  constructor(private readonly store: Pick<MetadataStore, 'credentials' | 'changes'>) {
    this.unsubscribe = store.changes.subscribe((change) => {
      if (change.kind !== 'all') return;
      this.generation++;
      this.entries.clear();
    });
  }

  get(id: string): Promise<CredentialRecord | undefined> {
    return this.cached(`id:${id}`, () => this.store.credentials.get(id));
  }

  getByTokenHash(tokenHash: string): Promise<CredentialRecord | undefined> {
    return this.cached(`token:${tokenHash}`, () => this.store.credentials.getByTokenHash(tokenHash));
  }

  private async cached(cacheKey: string, read: () => Promise<CredentialRecord | undefined>): Promise<CredentialRecord | undefined> {
    this.store.changes.poll();
    const entry = this.entries.get(cacheKey);
    if (entry && performance.now() - entry.at < CREDENTIAL_CACHE_MAX_AGE_MS) return entry.record;
    const generation = this.generation;
    const at = performance.now();
    const record = await read();
    if (record && generation === this.generation) {
      this.entries.delete(cacheKey);
      if (this.entries.size >= CREDENTIAL_CACHE_MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(cacheKey, { record, at });
    }
    return record;
  }

  close(): void {
    this.unsubscribe();
    this.entries.clear();
  }
}
