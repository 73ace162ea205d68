import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { KmsError } from '../errors';
import type { Hsm, KeySpec, KeyUsage } from '../hsm/hsm';
import { DuplicateAliasError, isDestroyed, KEY_STATE, QuotaExceededError, type KeyRecord, type KeyState, type KeyUpdate } from '../domain/keys';
import type { MetadataStore, Repositories } from '../domain/repositories';
import type {
  CreateKeyRequest,
  CreateKeyResponse,
  DeletionStateResponse,
  DescribeKeyResponse,
  KeyStateResponse,
  ListKeysRequest,
  ListKeysResponse,
  OperateKeyRequest,
  ScheduleKeyDeletionRequest,
  UpdateKeyAliasRequest,
  UpdateKeyAliasResponse,
  UpdateKeyDescriptionRequest,
  UpdateKeyDescriptionResponse,
} from './api-types';
import type { Clock, RequestContext } from './context';
import { keyDetails } from './key-details';
import type { AliasCache } from './alias-cache';
import type { KeyCache } from './key-cache';
import { keyReference } from './key-reference';
import { finishDeletionOnce } from './maintenance';
import { checkPurpose, type KeyPurpose } from './key-purpose';
import { keyKindOf } from './key-specs';


const DAY_MS = 86_400_000;
const MIN_PENDING_DAYS = 7;
const MAX_PENDING_DAYS = 1096;
const MAX_LIST_LIMIT = 1000;

export interface KeyServiceDeps {
  readonly store: MetadataStore;
  /** Visible key records of this process (the data-key operations' hot path). */
  readonly cache: KeyCache;
  /** The keys aliases (v2) name, as lately read (the request path's resolution of an alias). */
  readonly aliases: AliasCache;
  readonly hsm: Hsm;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly region: string;
  readonly maxKeysPerProject: number;
  /** Finds the grant that lets a request allowed only by a grant act on a key (grant-service.ts). */
  readonly grants: KeyGrants;
}

export interface KeyGrants {
  /** The grant on `keyId` that allows ctx's principal ctx.access's operation, if there is one. */
  grantFor(ctx: RequestContext, keyId: string): Promise<{ readonly grantId: string } | undefined>;
}

/** Parses a JSON-string integer the schema already limited to digits; anything else is `code`. */
export function wholeNumber(value: string, code: ConstructorParameters<typeof KmsError>[0], min: number, max: number): number {
  const parsed = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(parsed >= min && parsed <= max)) throw new KmsError(code);
  return parsed;
}

/**
 * The key lifecycle: creating customer master keys in the HSM and moving them through their states.
 * Keys of one project are invisible to every other project (KMS.0207, as if they did not exist).
 */
export class KeyService {
  constructor(private readonly deps: KeyServiceDeps) {}

  /**
   * Creates a CMK. The record is written first (invisible, reserving the alias), then the HSM
   * generates the material, then the record becomes visible: a crash in between leaves an
   * invisible record that reconciliation rolls back, never a usable key without a record.
   */
  async createKey(ctx: RequestContext, request: CreateKeyRequest): Promise<CreateKeyResponse> {
    const { store, hsm, clock, logger } = this.deps;
    checkAlias(request.key_alias);
    const { spec, usage } = keyKindOf(request.key_spec, request.key_usage);
    if (!hsm.supports(spec, usage)) {
      throw new KmsError('KMS.0308', { detail: `key_spec: this HSM cannot make ${spec} keys for ${usage}.` });
    }
    const origin = request.origin ?? 'kms';
    if (origin !== 'kms' && origin !== 'external') throw new KmsError('KMS.0308', { detail: 'origin: must be kms or external.' });
    if (origin === 'external') checkImportable(spec, hsm);
    await this.releaseAlias(ctx, request.key_alias);

    const record: KeyRecord = {
      keyId: randomUUID(),
      projectId: ctx.projectId,
      alias: request.key_alias,
      description: request.key_description ?? '',
      keySpec: spec,
      keyUsage: usage,
      origin,
      // An external key has no material until it is imported (import-service.ts).
      state: origin === 'external' ? KEY_STATE.pendingImport : KEY_STATE.enabled,
      creationDate: clock(),
      scheduledDeletionDate: null,
      materialVersion: 0,
    };
    try {
      await store.keys.insertProvisioning(record, this.deps.maxKeysPerProject);
    } catch (error) {
      if (error instanceof DuplicateAliasError) throw new KmsError('KMS.1104');
      if (error instanceof QuotaExceededError) throw new KmsError('KMS.1105');
      throw error;
    }
    if (origin === 'kms') await this.generateMaterial(ctx, record, spec, usage);
    else if (!(await store.keys.markProvisioned(record.keyId))) {
      throw new KmsError('KMS.0103', { cause: new Error(`creation of ${record.keyId} was rolled back meanwhile`) });
    }
    ctx.actedOn.keyId = record.keyId;
    logger.info({ requestId: ctx.requestId, projectId: ctx.projectId, keyId: record.keyId }, 'key created');
    return { key_info: { key_id: record.keyId, domain_id: record.projectId } };
  }

  /**
   * The HSM generates a new key's material, then its record becomes visible; a failure destroys
   * what the HSM may have made and forgets the record.
   */
  private async generateMaterial(ctx: RequestContext, record: KeyRecord, spec: KeySpec, usage: KeyUsage): Promise<void> {
    const { store, hsm, logger } = this.deps;
    const material = { keyId: record.keyId, version: record.materialVersion };
    const undo = { requestId: ctx.requestId, projectId: ctx.projectId, keyId: record.keyId };
    try {
      // Fresh: the key id was made just now, so the token is not searched for its material first.
      await hsm.generateKey(material, spec, { fresh: true, usage });
    } catch (error) {
      // The HSM may have made the key before failing: destroy it, then forget the record. If that
      // fails too, the record stays invisible and reconciliation finishes the job, material first.
      try {
        await hsm.destroyKey(material);
        await store.keys.remove(record.keyId);
      } catch (undoError) {
        logger.error({ ...undo, err: undoError }, 'could not undo a failed key creation: its invisible record (and perhaps its material) stays until reconciliation rolls it back');
      }
      throw error;
    }
    if (!(await store.keys.markProvisioned(record.keyId))) {
      // Reconciliation took the creation for a crashed one (the HSM took over a minute): undo it.
      await hsm.destroyKey(material).catch((undoError: unknown) => {
        logger.error({ ...undo, err: undoError }, 'could not destroy the material of a key creation rolled back meanwhile: the token holds material that no record names');
      });
      throw new KmsError('KMS.0103', { cause: new Error(`creation of ${record.keyId} was rolled back while the HSM generated the key`) });
    }
  }

  async describeKey(ctx: RequestContext, request: OperateKeyRequest): Promise<DescribeKeyResponse> {
    const record = await this.visibleKey(ctx, request.key_id);
    return { key_info: await this.details(record) };
  }

  /** A record's KeyDetails: its rotation setting, and an imported key's material expiry. */
  private async details(record: KeyRecord): Promise<ReturnType<typeof keyDetails>> {
    const { store, region } = this.deps;
    const imported = record.origin === 'external' ? await store.imports.get(record.keyId) : undefined;
    const expiresAt = imported?.imported ? imported.materialExpiresAt : null;
    return keyDetails(record, region, (await store.rotations.state(record.keyId)).enabled, expiresAt);
  }

  async listKeys(ctx: RequestContext, request: ListKeysRequest): Promise<ListKeysResponse> {
    const limit = request.limit === undefined ? MAX_LIST_LIMIT : wholeNumber(request.limit, 'KMS.1601', 1, MAX_LIST_LIMIT);
    const offset = request.marker === undefined || request.marker === '' ? 0 : wholeNumber(request.marker, 'KMS.1602', 0, 2 ** 31);
    const state = request.key_state as KeyState | undefined;
    // As in Huawei KMS: without a key_spec only AES_256 keys are listed; ALL lists every kind.
    const spec = request.key_spec ?? 'AES_256';
    const { records, total } = await this.deps.store.keys.list(ctx.projectId, {
      ...(state ? { state } : {}),
      ...(spec === 'ALL' ? {} : { spec }),
      offset,
      limit,
      now: this.deps.clock(),
    });
    const truncated = offset + records.length < total;
    const details: ReturnType<typeof keyDetails>[] = [];
    for (const record of records) details.push(await this.details(record));
    return {
      keys: records.map((record) => record.keyId),
      key_details: details,
      next_marker: truncated ? String(offset + records.length) : '',
      truncated: truncated ? 'true' : 'false',
      total,
    };
  }

  async enableKey(ctx: RequestContext, request: OperateKeyRequest): Promise<KeyStateResponse> {
    const record = await this.transition(ctx, request.key_id, (current) => {
      if (current.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
      if (current.state !== KEY_STATE.disabled) throw new KmsError('KMS.1201');
      return { state: KEY_STATE.enabled };
    });
    return { key_info: { key_id: record.keyId, key_state: record.state } };
  }

  async disableKey(ctx: RequestContext, request: OperateKeyRequest): Promise<KeyStateResponse> {
    const record = await this.transition(ctx, request.key_id, (current) => {
      if (current.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
      if (current.state !== KEY_STATE.enabled) throw new KmsError('KMS.1301');
      return { state: KEY_STATE.disabled };
    });
    return { key_info: { key_id: record.keyId, key_state: record.state } };
  }

  /** The key is unusable at once; its HSM material is destroyed when the window ends (maintenance.ts). */
  async scheduleKeyDeletion(ctx: RequestContext, request: ScheduleKeyDeletionRequest): Promise<DeletionStateResponse> {
    const days = wholeNumber(request.pending_days, 'KMS.1401', MIN_PENDING_DAYS, MAX_PENDING_DAYS);
    const record = await this.transition(ctx, request.key_id, (current) => {
      if (current.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.1402');
      return { state: KEY_STATE.pendingDeletion, scheduledDeletionDate: this.deps.clock() + days * DAY_MS };
    });
    this.deps.logger.info(
      { requestId: ctx.requestId, projectId: ctx.projectId, keyId: record.keyId, deletionDate: record.scheduledDeletionDate },
      'key deletion scheduled',
    );
    return { key_id: record.keyId, key_state: record.state };
  }

  /**
   * A cancelled deletion leaves the key disabled, as Huawei KMS does: enabling it is a second,
   * deliberate step. An external key without imported material goes back to pending import.
   */
  async cancelKeyDeletion(ctx: RequestContext, request: OperateKeyRequest): Promise<DeletionStateResponse> {
    const record = await this.transition(ctx, request.key_id, async (current, tx) => {
      if (current.state !== KEY_STATE.pendingDeletion) throw new KmsError('KMS.1501');
      // By the key's id (the request may name it by alias), in the transaction that holds the key:
      // no import can change this meanwhile (an import needs state 5).
      const imported = current.origin === 'external' && (await tx.imports.get(current.keyId))?.imported === true;
      const state = current.origin === 'external' && !imported ? KEY_STATE.pendingImport : KEY_STATE.disabled;
      return { state, scheduledDeletionDate: null };
    });
    return { key_id: record.keyId, key_state: record.state };
  }

  async updateKeyAlias(ctx: RequestContext, request: UpdateKeyAliasRequest): Promise<UpdateKeyAliasResponse> {
    checkAlias(request.key_alias);
    await this.releaseAlias(ctx, request.key_alias);
    const record = await this.transition(ctx, request.key_id, (current) => {
      if (current.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
      return { alias: request.key_alias };
    });
    return { key_info: { key_id: record.keyId, key_alias: record.alias } };
  }

  async updateKeyDescription(ctx: RequestContext, request: UpdateKeyDescriptionRequest): Promise<UpdateKeyDescriptionResponse> {
    const record = await this.transition(ctx, request.key_id, (current) => {
      if (current.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
      return { description: request.key_description };
    });
    return { key_info: { key_id: record.keyId, key_description: record.description } };
  }

  /**
   * The key an operation may use: it exists in the caller's project, is enabled, and is of the
   * spec and usage `purpose` needs (key-purpose.ts; by default an AES key to seal with), checked
   * here so that a key of the wrong kind never reaches the HSM.
   * KMS.0207 when it does not exist, KMS.0209 when disabled, KMS.0210 when pending deletion.
   */
  async usableKey(ctx: RequestContext, keyId: string, purpose: KeyPurpose = 'seal'): Promise<KeyRecord> {
    const record = await this.visibleKey(ctx, keyId);
    if (record.state === KEY_STATE.disabled) throw new KmsError('KMS.0209');
    if (record.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
    if (record.state === KEY_STATE.pendingImport) throw new KmsError('KMS.1301', { detail: `key ${record.keyId} is pending import: it has no key material until some is imported.` });
    if (record.state !== KEY_STATE.enabled) throw new KmsError('KMS.1301');
    checkPurpose(record, purpose);
    return record;
  }

  /**
   * A key whose deletion window has ended is gone, but its record keeps its alias until the sweep
   * removes it: finish that deletion now, so the alias is free the moment the window ends.
   */
  private async releaseAlias(ctx: RequestContext, alias: string): Promise<void> {
    const holder = await this.deps.store.keys.getByAlias(ctx.projectId, alias);
    // Under the deletion's lease: when another process is finishing it right now, this one leaves
    // it to that one (and the alias is free once it has: until then, KMS.1104).
    const now = this.deps.clock();
    if (holder && isDestroyed(holder, now)) await finishDeletionOnce(this.deps.store, this.deps.hsm, holder, now, this.deps.logger);
  }

  /**
   * A key of the caller's project that still exists, named by its id or by an alias (keyIdOf): a
   * key whose deletion window ended is gone, whatever names it. Found, it is the key the request
   * acts on (ctx.actedOn), whatever the rules say next. A caller
   * allowed only by a grant (ctx.access) needs one on this key for its operation, and without one
   * gets the 403 its permissions gave, whether the key exists or not.
   */
  async visibleKey(ctx: RequestContext, reference: string): Promise<KeyRecord> {
    const keyId = await this.keyIdOf(ctx, reference, (alias) => this.deps.aliases.keyIdOf(ctx.projectId, alias));
    if (ctx.access.by === 'grant') {
      // By the key's id: a grant is on the key, whichever name the request gave it.
      const grant = keyId === undefined ? undefined : await this.deps.grants.grantFor(ctx, keyId);
      if (!grant) throw new KmsError('KMS.0307');
      ctx.actedOn.viaGrantId = grant.grantId;
    }
    if (keyId === undefined) throw new KmsError('KMS.0207');
    const record = await this.deps.cache.get(ctx.projectId, keyId);
    if (!record || isDestroyed(record, this.deps.clock())) throw new KmsError('KMS.0207');
    ctx.actedOn.keyId = record.keyId;
    return record;
  }

  /**
   * The id of the key a request's `key_id` names in the caller's project: the id itself, or the key
   * an alias (v2) or alias URN names (`lookUp`: cached on the request path, the store's in a
   * transaction), as Huawei KMS takes either wherever it takes a key id. Undefined when it names
   * none. Every key-taking operation comes through here (visibleKey, usableKey, transition), so
   * an operation added later takes aliases without a word of its own, and answers, audits and
   * checks grants by the key's id (ctx.actedOn.keyId is the record's).
   */
  private async keyIdOf(ctx: RequestContext, reference: string, lookUp: (alias: string) => Promise<string | undefined>): Promise<string | undefined> {
    const named = keyReference(reference, this.deps.region, ctx.projectId);
    if (named === undefined) return undefined;
    return named.kind === 'id' ? named.keyId : lookUp(named.alias);
  }

  /**
   * Reads the key and writes `decide(record)`'s update in one transaction, the read locking the
   * record, so that two requests (or processes, or instances) never both act on the same old
   * state. Read from the store, never from the cache: another process may have moved on.
   * `decide` throws to refuse.
   */
  private async transition(
    ctx: RequestContext,
    reference: string,
    decide: (current: KeyRecord, tx: Repositories) => KeyUpdate | Promise<KeyUpdate>,
  ): Promise<KeyRecord> {
    // No grant allows a change of the key itself (grant-operations.ts): only the permission does.
    if (ctx.access.by !== 'permission') throw new KmsError('KMS.0307');
    const now = this.deps.clock();
    try {
      return await this.deps.store.withTransaction(async (tx) => {
        const keyId = await this.keyIdOf(ctx, reference, async (alias) => (await tx.aliases.get(ctx.projectId, alias))?.keyId);
        const current = keyId === undefined ? undefined : await tx.keys.get(ctx.projectId, keyId, { lock: true });
        if (!current || isDestroyed(current, now)) throw new KmsError('KMS.0207');
        ctx.actedOn.keyId = current.keyId;
        const next: KeyRecord = { ...current, ...(await decide(current, tx)) };
        await tx.keys.update(next);
        return next;
      });
    } catch (error) {
      if (error instanceof DuplicateAliasError) throw new KmsError('KMS.1104');
      throw error;
    }
  }
}


/**
 * An external key's material comes from import-key-material, where the HSM can unwrap it: AES_256
 * material, or the private key of a key pair spec the HSM imports (found at its start-up).
 */
function checkImportable(spec: KeySpec, hsm: Hsm): void {
  const role = hsm.keyImport;
  if (!role) throw new KmsError('KMS.0308', { detail: 'origin: this HSM cannot import key material (no RSA-OAEP unwrapping with a hash the API names).' });
  if (spec === 'AES_256' || role.privateKeySpecs.has(spec)) return;
  const importable = ['AES_256', ...role.privateKeySpecs].join(', ');
  throw new KmsError('KMS.0308', { detail: `origin: this HSM imports key material of ${importable} keys only.` });
}

/** Aliases ending in /default name the cloud services' default keys, which users cannot create. */
function checkAlias(alias: string): void {
  if (alias.endsWith('/default')) throw new KmsError('KMS.1101', { detail: 'Aliases ending in /default are reserved.' });
}
