/**
 * The data-key cache: the AWS Encryption SDK's caching materials manager over its LRU cache, with
 * every limit required, concurrent misses for one partition sharing one KMS call, and counters.
 *
 * A cache key is (keyring partition, algorithm suite, encryption context): a data key made for one
 * context is never used for another. The entries live in a ZeroingKeyStore (key-store.ts), which
 * zeroes an entry's plaintext data key when it leaves (LRU eviction, a limit reached, its age, even
 * with no traffic: a timer sweeps expired entries; or close()); an encrypting message's copy is
 * zeroed by the client when the message ends or is abandoned (client.ts, zeroingAfterUse).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { NodeCachingMaterialsManager } from '@aws-crypto/caching-materials-manager-node';
import {
  NodeDefaultCryptographicMaterialsManager,
  type KeyringNode,
  type NodeDecryptionMaterial,
  type NodeEncryptionMaterial,
  type NodeMaterialsManager,
} from '@aws-crypto/material-management-node';
import { ConfigurationError } from './errors';
import { ZeroingKeyStore } from './key-store';

export interface DataKeyCacheLimits {
  /** A data key is not used for new messages after this many ms, and is zeroed within a second after. */
  readonly maxAgeMs: number;
  /** A data key encrypts at most this many messages. */
  readonly maxMessages: number;
  /** A data key encrypts at most this many plaintext bytes (over all its messages). */
  readonly maxBytes: number;
  /** At most this many data keys are held (least recently used leave first). */
  readonly capacity: number;
}

/**
 * Safe defaults: five minutes, 10 000 messages or 1 GiB per data key, whichever comes first, so
 * that one data key protects a bounded amount of data and a leaked one exposes little; 1000 entries.
 * (AES-GCM with the suite's per-message derived keys and random message ids stays far inside its
 * bounds at these figures; they are about limiting exposure, not about GCM's limits.)
 */
export const DEFAULT_CACHE_LIMITS: DataKeyCacheLimits = Object.freeze({
  maxAgeMs: 5 * 60_000,
  maxMessages: 10_000,
  maxBytes: 2 ** 30,
  capacity: 1000,
});

export interface CacheMetrics {
  /** Requests for materials answered from the cache. */
  readonly hits: number;
  /** Requests that went to the keyring (so to the KMS). */
  readonly misses: number;
}

/** Serializes the calls of one key: a second caller for a partition waits for the first, then hits. */
class SingleFlight {
  private readonly tails = new Map<string, Promise<unknown>>();
  run<T>(key: string, work: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(work, work);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    // The map holds only calls in flight: the last one out removes its key.
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}

/** A materials manager that counts which requests reached the keyring. */
class CountingMaterialsManager implements NodeMaterialsManager {
  constructor(
    private readonly inner: NodeMaterialsManager,
    private readonly onMiss: () => void,
  ) {}
  getEncryptionMaterials: NodeMaterialsManager['getEncryptionMaterials'] = (request) => {
    this.onMiss();
    return this.inner.getEncryptionMaterials(request);
  };
  decryptMaterials: NodeMaterialsManager['decryptMaterials'] = (request) => {
    this.onMiss();
    return this.inner.decryptMaterials(request);
  };
}

export class CachingMaterials implements NodeMaterialsManager {
  private readonly caching: NodeCachingMaterialsManager;
  private readonly store: ZeroingKeyStore;
  private readonly flights = new SingleFlight();
  private readonly missed = new AsyncLocalStorage<{ missed: boolean }>();
  private counts = { hits: 0, misses: 0 };

  constructor(keyring: KeyringNode, partition: string, limits: DataKeyCacheLimits) {
    for (const name of ['maxAgeMs', 'maxMessages', 'maxBytes', 'capacity'] as const) {
      const value = limits[name];
      if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigurationError(`cache limit ${name} must be a positive integer`);
    }
    const backing = new CountingMaterialsManager(new NodeDefaultCryptographicMaterialsManager(keyring), () => {
      const store = this.missed.getStore();
      if (store) store.missed = true;
    });
    this.store = new ZeroingKeyStore(limits.capacity, limits.maxAgeMs);
    try {
      this.caching = new NodeCachingMaterialsManager({
        backingMaterials: backing,
        cache: this.store,
        partition,
        maxAge: limits.maxAgeMs,
        maxMessagesEncrypted: limits.maxMessages,
        maxBytesEncrypted: limits.maxBytes,
      });
    } catch (error) {
      this.store.close();
      throw new ConfigurationError(`cache limits refused: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Zeroes and drops every cached data key and stops the sweep; later messages are not cached. */
  close(): void {
    this.store.close();
  }

  get metrics(): CacheMetrics {
    return { ...this.counts };
  }

  getEncryptionMaterials: NodeMaterialsManager['getEncryptionMaterials'] = (request) =>
    this.flights.run(`e\u0000${request.suite?.id ?? ''}\u0000${canonicalContext(request.encryptionContext)}`, () =>
      this.counted(() => this.caching.getEncryptionMaterials(request)),
    );

  decryptMaterials: NodeMaterialsManager['decryptMaterials'] = (request) =>
    this.flights.run(
      `d\u0000${request.suite.id}\u0000${canonicalContext(request.encryptionContext)}\u0000${request.encryptedDataKeys
        .map((edk) => `${edk.providerId}/${edk.providerInfo}/${Buffer.from(edk.encryptedDataKey).toString('base64')}`)
        .join(',')}`,
      () => this.counted(() => this.caching.decryptMaterials(request)),
    );

  private async counted<T extends NodeEncryptionMaterial | NodeDecryptionMaterial>(work: () => Promise<T>): Promise<T> {
    const store = { missed: false };
    const material = await this.missed.run(store, work);
    if (store.missed) this.counts.misses += 1;
    else this.counts.hits += 1;
    return material;
  }
}

function canonicalContext(context: Readonly<Record<string, string>>): string {
  return JSON.stringify(Object.keys(context).sort().map((key) => [key, context[key]]));
}
