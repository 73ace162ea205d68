import type { AliasRecord } from './aliases';
import type { CredentialRecord } from './credentials';
import type { ImportDue, ImportRecord } from './imports';
import type { CascadedRemoval, GrantPrincipal, GrantRecord, Page } from './grants';
import type { KeyRecord, KeyState, MaterialRef } from './keys';
import type { MaterialUsage, RotationCandidate, RotationClaim, RotationReason, RotationSettings, RotationState, SealCount } from './rotation';
import type { ProjectTag, Tag, TagFilter, TaggedKey, TagRemoval } from './tags';
import type { BootstrapLock, ChangeFeed, JobLeases, StoreObserver, StoreStats } from './coordination';

/**
 * The store seam: what the services keep, behind asynchronous repositories, whatever keeps it (the
 * embedded SQLite database, PostgreSQL). The services see only these interfaces; one composition
 * root (src/open-core.ts) picks the implementation (src/store/open-store.ts). One contract suite
 * (test/store/) holds every implementation to what is written here.
 *
 * Reads outside a transaction see what has committed. A write that is one method here is atomic on
 * its own. Anything that reads and then writes on what it read runs in {@link MetadataStore.withTransaction},
 * reading with `{ lock: true }` what it will change, so that two requests, processes or instances
 * never both act on the same old state.
 *
 * Every write that changes what a key's cached state would be (its record, its current material
 * version, its grants) is announced on the {@link ChangeFeed} to every process once it commits.
 */

/** Options of a read inside a transaction. */
export interface ReadOptions {
  /**
   * Hold what was read until the transaction ends, against every other writer (PostgreSQL: SELECT
   * … FOR UPDATE; SQLite: its transactions exclude every other writer already).
   */
  readonly lock?: boolean;
}

export interface KeyRepository {
  /**
   * Records a key whose HSM material is about to be generated, and its first material version
   * (record.materialVersion). It stays invisible until {@link markProvisioned}. Counted against
   * `maxKeysInProject` atomically with the insert, so that concurrent creations on any instance
   * cannot overshoot: throws QuotaExceededError, or DuplicateAliasError when the alias is taken.
   */
  insertProvisioning(record: KeyRecord, maxKeysInProject: number): Promise<void>;
  /**
   * Makes a new key visible. False when reconciliation has claimed its roll-back
   * ({@link claimRollback}) or finished it: the creation lost, and its material must go.
   */
  markProvisioned(keyId: string): Promise<boolean>;
  /**
   * Claims an unfinished creation for its roll-back, so that {@link markProvisioned} can no longer
   * make it visible: one row, one atomic update, so that a creation finishing while the sweep takes
   * it over either wins (false here: it is visible now) or loses. True when the key is still
   * unfinished (claimed now or by an earlier, failed roll-back), false when it is visible or gone.
   */
  claimRollback(keyId: string): Promise<boolean>;
  /** Forgets a key, its material versions, grants, rotation state, aliases and tags. */
  remove(keyId: string): Promise<void>;
  /** A visible key of the project, whatever its state (the deletion rule is the caller's: isDestroyed). Never cached here. */
  get(projectId: string, keyId: string, options?: ReadOptions): Promise<KeyRecord | undefined>;
  /** The visible key holding `alias` in a project, whatever its state. */
  getByAlias(projectId: string, alias: string): Promise<KeyRecord | undefined>;
  /** Writes a key's alias, description, state and scheduled deletion date. Throws DuplicateAliasError when the alias is taken. */
  update(record: KeyRecord): Promise<void>;
  /** Keys of a project that exist at `now` (creations under way count: they hold their place). */
  countKeys(projectId: string, now: number): Promise<number>;
  /** Keys of every project that exist at `now`, by state (creations under way not counted): the metrics read it. */
  countByState(now: number): Promise<Map<KeyState, number>>;
  /** One page of a project's keys that exist at `now` (of `state` and `spec` when given), oldest first, and how many match in all. */
  list(projectId: string, options: { state?: KeyState; spec?: string; offset: number; limit: number; now: number }): Promise<{ records: KeyRecord[]; total: number }>;
  /** Keys whose creation started at or before `before` and never finished (a crash or an HSM failure). */
  unprovisioned(before: number): Promise<KeyRecord[]>;
  /** Visible keys pending deletion whose window has ended at `now`. */
  dueForDeletion(now: number): Promise<KeyRecord[]>;
  /** The material versions of one key, oldest first (a rotation's claimed version included). */
  materialVersions(keyId: string): Promise<number[]>;
  /** Every material version of every visible key up to its current one, for reconciliation with the token; none of a key pending import (state 5), which has no material. */
  allMaterials(): Promise<MaterialRef[]>;
}

export interface GrantRepository {
  /**
   * Records a grant unless its key already holds `maxPerKey` (GrantQuotaExceededError), counted
   * atomically with the insert. GrantKeyGoneError when the key's record is gone;
   * GrantParentGoneError when the grant it is made on is (it must not outlive it).
   */
  insert(record: Omit<GrantRecord, 'projectId'>, maxPerKey: number): Promise<void>;
  /** A grant on a key of `projectId` that exists at `now`. */
  get(projectId: string, grantId: string, now: number): Promise<GrantRecord | undefined>;
  /**
   * Removes a grant and every grant made on its authority, recursively, atomically. Returns those
   * removed with it (each with the grant it was made on); `removed` is false when it was gone already.
   */
  removeWithDescendants(grantId: string): Promise<{ removed: boolean; cascaded: CascadedRemoval[] }>;
  /** One page of a key's grants, oldest first, and how many it has. */
  forKey(keyId: string, page: Page): Promise<{ records: GrantRecord[]; total: number }>;
  /** One page of the grants, on keys of any project, that name `principalId` as retiring principal. */
  retirable(principalId: string, page: Page): Promise<{ records: GrantRecord[]; total: number }>;
  /** The grants on a key of `projectId` that exists at `now` and that name `principal`, as grantee or as retiring principal. */
  naming(projectId: string, keyId: string, principal: GrantPrincipal, now: number): Promise<GrantRecord[]>;
  /** The most grants any one key of the project has (what the per-key quota is measured against). */
  mostOnAKey(projectId: string, now: number): Promise<number>;
}

/**
 * Aliases (v2) of keys (src/domain/aliases.ts). An alias is unique in its project whatever the state
 * of its key; it goes with its key when the key's record is removed (keys.remove), and until then a
 * key whose deletion window has ended keeps its aliases (the service frees them: KeyService). Every
 * write announces the keys it changed on the change feed (the alias cache listens).
 */
export interface AliasRepository {
  /**
   * Records an alias of a key of the record's project, counted against `maxPerKey` atomically with
   * the insert: AliasTakenError when the project has it already, AliasQuotaExceededError when the
   * key holds `maxPerKey`, AliasKeyGoneError when the key (of that project) is gone.
   */
  insert(record: AliasRecord, maxPerKey: number): Promise<void>;
  /** An alias of the project, whatever the state of its key (the deletion rule is the caller's: isDestroyed). */
  get(projectId: string, alias: string): Promise<AliasRecord | undefined>;
  /**
   * Moves an alias of the project to the key `keyId` of the same project (its update time `now`),
   * atomically with the target's count (AliasQuotaExceededError; AliasKeyGoneError when the target
   * is gone). Undefined when the project has no such alias. Announces both keys.
   */
  associate(projectId: string, alias: string, keyId: string, now: number, maxPerKey: number): Promise<{ readonly previousKeyId: string; readonly record: AliasRecord } | undefined>;
  /** Removes aliases of the key, all or none: AliasNotHeldError, naming those the key does not hold, removes nothing. */
  remove(projectId: string, keyId: string, aliases: readonly string[]): Promise<void>;
  /** Up to `limit` aliases of the project (of one key, when given) whose key exists at `now`, in alias order, after `after` when given. */
  list(projectId: string, options: { keyId?: string; after?: string; limit: number; now: number }): Promise<AliasRecord[]>;
}

export interface RotationRepository {
  /** A key's rotation settings; a key never configured has ROTATION_OFF. */
  state(keyId: string, options?: ReadOptions): Promise<RotationState>;
  /** Writes a key's settings (a key removed meanwhile is skipped). Read them with { lock: true } in the same transaction first. */
  setSettings(keyId: string, settings: RotationSettings): Promise<void>;
  /**
   * Claims the next rotation of a key, when `reason`'s condition holds and no rotation of it is
   * under way: returns the version it is to make (its material row is written), or undefined. Of
   * several processes or instances claiming at once, exactly one gets it.
   */
  claim(keyId: string, reason: RotationReason, now: number, budget: number): Promise<number | undefined>;
  /**
   * Makes a claimed version the key's current one, and schedules the next rotation
   * (nextRotationAfter). False when the claim is gone (rolled back meanwhile).
   */
  finish(keyId: string, version: number, claimedAt: number, now: number): Promise<boolean>;
  /** Forgets a claimed version whose HSM object is destroyed (or was never made), and releases the claim. */
  rollBack(keyId: string, version: number): Promise<void>;
  /** Rotations claimed at or before `before` that have not finished (a crash, or one still under way). */
  claimedBefore(before: number): Promise<RotationClaim[]>;
  /** Enabled keys whose scheduled rotation is due at `now`. */
  due(now: number): Promise<RotationCandidate[]>;
  /** Enabled keys whose current version has sealed `budget` times or more; never an imported key's (origin external: its material cannot be made anew). */
  overBudget(budget: number): Promise<RotationCandidate[]>;
  /** The most seals (flushed) under the current version of any enabled key. */
  mostSeals(): Promise<number>;
  /** Adds counted seals atomically (a version gone meanwhile is skipped). */
  addSeals(counts: readonly SealCount[]): Promise<void>;
  /** A key's material versions in use, oldest first, with their flushed seal counts. */
  materials(keyId: string): Promise<MaterialUsage[]>;
}

export interface CredentialRepository {
  insert(record: Omit<CredentialRecord, 'enabled'>): Promise<void>;
  get(id: string): Promise<CredentialRecord | undefined>;
  getByTokenHash(tokenHash: string): Promise<CredentialRecord | undefined>;
  list(projectId?: string): Promise<CredentialRecord[]>;
  /** False when there is no such credential. */
  setEnabled(id: string, enabled: boolean): Promise<boolean>;
  /** False when there is no such credential. */
  remove(id: string): Promise<boolean>;
  count(): Promise<number>;
}

/**
 * Key tags (src/domain/tags.ts). Tags are deleted with their key (remove, and the sweep); the tags
 * of a key whose deletion window has ended are gone with it for every read here, as the key is.
 * Tag keys and values compare exactly (code points, case-sensitive), and list in code point order
 * in every store.
 */
export interface TagRepository {
  /** A key's tags, in tag key order. */
  forKey(keyId: string): Promise<Tag[]>;
  /**
   * Sets each tag's value on the key, adding the tag keys it lacks, unless the key would then hold
   * more than `maxPerKey` tags (TagLimitExceededError), counted atomically with the write: all or
   * nothing. TagKeyGoneError when the key's record is gone.
   */
  put(keyId: string, tags: readonly Tag[], maxPerKey: number): Promise<void>;
  /** Removes the key's tags named, atomically; how many it removed (one that is not there is skipped). */
  remove(keyId: string, tags: readonly TagRemoval[]): Promise<number>;
  /** The tag keys on the project's keys that exist at `now`, each with its distinct values, both in code point order. */
  projectTags(projectId: string, now: number): Promise<ProjectTag[]>;
  /** One page of the project's keys the filter finds, oldest first (as list-keys), with their tags, and how many it finds in all. */
  find(projectId: string, filter: TagFilter, page: { readonly offset: number; readonly limit: number }): Promise<{ keys: TaggedKey[]; total: number }>;
  /** How many of the project's keys the filter finds. */
  count(projectId: string, filter: TagFilter): Promise<number>;
}

/** Where each instance's audit chain head is checkpointed, so that a chain cut short after its last checkpoint is detected. */
export interface AuditCheckpointRepository {
  /** Records (replaces) an instance's chain head. */
  record(checkpoint: AuditCheckpoint): Promise<void>;
  all(): Promise<AuditCheckpoint[]>;
}

export interface AuditCheckpoint {
  /** The chain: `<instance>/<chain file>` (src/audit/chain-checkpoints.ts), e.g. `kms-a/audit-2.log`. */
  readonly instance: string;
  /** How many records the chain had, and the hash of the last. */
  readonly records: number;
  readonly head: string;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/**
 * The import state of external keys (src/domain/imports.ts), one record per key, which goes with
 * its key. Bounded by the keys: a new import request replaces the record's wrapping expiry.
 */
export interface ImportRepository {
  /** A key's import record (whatever its state), or undefined when none was written. */
  get(keyId: string, options?: ReadOptions): Promise<ImportRecord | undefined>;
  /** Writes a key's import record, replacing the one it had; a key removed meanwhile is skipped. */
  put(record: ImportRecord): Promise<void>;
  /** Keys whose wrapping key pair expired at `now` (wrappingExpiresAt at or before it). */
  wrappingExpired(now: number): Promise<ImportDue[]>;
  /** Keys whose imported material expired at `now` and whose record is enabled or disabled (a key pending deletion waits). */
  materialExpired(now: number): Promise<ImportDue[]>;
}

/** The repositories, as seen inside a transaction or outside one. */
export interface Repositories {
  readonly keys: KeyRepository;
  readonly grants: GrantRepository;
  readonly aliases: AliasRepository;
  readonly rotations: RotationRepository;
  readonly credentials: CredentialRepository;
  readonly auditCheckpoints: AuditCheckpointRepository;
  readonly tags: TagRepository;
  readonly imports: ImportRepository;
}

export type StoreKind = 'sqlite' | 'postgres';

export interface MetadataStore extends Repositories {
  readonly kind: StoreKind;
  /**
   * Runs `work` in one transaction: what it writes through `tx` commits when it resolves and is
   * rolled back when it throws (the error is rethrown). Keep HSM calls out of it: it may hold other
   * writers back for as long as it runs. Not reentrant: never call withTransaction inside `work`.
   */
  withTransaction<T>(work: (tx: Repositories) => Promise<T>): Promise<T>;
  readonly changes: ChangeFeed;
  readonly leases: JobLeases;
  readonly bootstrap: BootstrapLock;
  /** Throws when the store does not answer (the readiness probe). */
  ping(): Promise<void>;
  /** Tells `observer` of the change feed's deliveries and reconnects and of lease outcomes from now on (the metrics). */
  observe(observer: StoreObserver): void;
  /** What the store holds now: its connection pool, where it has one. Cheap: read at every scrape. */
  stats(): StoreStats;
  close(): Promise<void>;
}
