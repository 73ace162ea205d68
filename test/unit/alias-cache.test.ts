import type { ChangeFeed, StoreChange } from '../../src/domain/coordination';
import type { AliasRecord } from '../../src/domain/aliases';
import type { AliasRepository } from '../../src/domain/repositories';
import { AliasCache } from '../../src/kms/alias-cache';

/**
 * The alias cache of the request path (src/kms/alias-cache.ts): a change the feed delivers, naming
 * any key, empties it, since the feed names keys and an alias's move names the keys it left and
 * joined; an unknown alias is never kept; it holds at most its bound; a project sees its own.
 */

const HOUR_MS = 3_600_000;

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

/** Aliases by `project\nalias`, counting the reads that reach it. */
class CountingAliases implements Pick<AliasRepository, 'get'> {
  readonly rows = new Map<string, AliasRecord>();
  reads = 0;
  set(projectId: string, alias: string, keyId: string): void {
    this.rows.set(`${projectId}\n${alias}`, { projectId, alias, keyId, createTime: 0, updateTime: 0 });
  }
  async get(projectId: string, alias: string): Promise<AliasRecord | undefined> {
    this.reads++;
    return this.rows.get(`${projectId}\n${alias}`);
  }
}

it('answers from the cache until a change naming any key empties it', async () => {
  const aliases = new CountingAliases();
  const changes = new TestFeed();
  const cache = new AliasCache({ aliases, changes }, { maxAgeMs: HOUR_MS, maxEntries: 100 });
  aliases.set('p1', 'alias/a', 'key-1');
  expect(await cache.keyIdOf('p1', 'alias/a')).toBe('key-1');
  expect(await cache.keyIdOf('p1', 'alias/a')).toBe('key-1');
  expect(aliases.reads).toBe(1);

  // Moved by another process: its commit announces the keys (here the one it joined, which this cache never read).
  aliases.set('p1', 'alias/a', 'key-2');
  expect(await cache.keyIdOf('p1', 'alias/a')).toBe('key-1');
  changes.emit({ kind: 'key', keyId: 'key-2' });
  expect(await cache.keyIdOf('p1', 'alias/a')).toBe('key-2');
  aliases.rows.clear();
  changes.emit({ kind: 'all' });
  expect(await cache.keyIdOf('p1', 'alias/a')).toBeUndefined();
  cache.close();
});

it('keeps no unknown alias, keeps projects apart, and holds at most its bound', async () => {
  const aliases = new CountingAliases();
  const cache = new AliasCache({ aliases, changes: new TestFeed() }, { maxAgeMs: HOUR_MS, maxEntries: 3 });
  for (let i = 0; i < 10; i++) expect(await cache.keyIdOf('p1', `alias/none-${i}`)).toBeUndefined();
  expect(cache.size).toBe(0);
  aliases.set('p1', 'alias/x', 'key-1');
  aliases.set('p2', 'alias/x', 'key-2');
  expect(await cache.keyIdOf('p1', 'alias/x')).toBe('key-1');
  expect(await cache.keyIdOf('p2', 'alias/x')).toBe('key-2');
  for (let i = 0; i < 5; i++) {
    aliases.set('p1', `alias/many-${i}`, `key-${i}`);
    await cache.keyIdOf('p1', `alias/many-${i}`);
  }
  expect(cache.size).toBe(3);
  cache.close();
});
