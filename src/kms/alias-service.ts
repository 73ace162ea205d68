import type { Logger } from 'pino';
import { AliasKeyGoneError, AliasNotHeldError, AliasQuotaExceededError, AliasTakenError, type AliasRecord } from '../domain/aliases';
import { isDestroyed, KEY_STATE } from '../domain/keys';
import type { MetadataStore } from '../domain/repositories';
import { KmsError } from '../errors';
import type { Hsm } from '../hsm/hsm';
import type { AliasEntity, AssociateAliasRequest, CreateAliasRequest, DeleteAliasRequest, ListAliasesResponse } from './api-types';
import type { Clock, RequestContext } from './context';
import { ALIAS, aliasUrn, isKeyReferenceShape, MAX_ALIASES_PER_KEY } from './key-reference';
import type { KeyService } from './key-service';
import { finishDeletionOnce } from './maintenance';

/** list-aliases: at most this many a page, and the default (the SDK's limit is a string of 1 to 100). */
const MAX_LIST_LIMIT = 100;

export interface AliasServiceDeps {
  readonly store: MetadataStore;
  readonly hsm: Hsm;
  /** Finds the key a request names (by id, alias or alias URN), in the caller's project. */
  readonly keys: KeyService;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The region alias URNs name (KMS_REGION). */
  readonly region: string;
}

/** An alias as the API answers it: ISO 8601 times to the second, as Huawei's pages show them ("2024-04-01T00:00:00Z"). */
function entity(record: AliasRecord, region: string): AliasEntity {
  const time = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    domain_id: record.projectId,
    key_id: record.keyId,
    alias: record.alias,
    alias_urn: aliasUrn(region, record.projectId, record.alias),
    create_time: time(record.createTime),
    update_time: time(record.updateTime),
  };
}

/** The store's refusals of an alias write, as the API answers them. */
function refusal(error: unknown): unknown {
  if (error instanceof AliasTakenError) return new KmsError('KMS.1104');
  if (error instanceof AliasQuotaExceededError) return new KmsError('KMS.0308', { detail: `A key holds at most ${MAX_ALIASES_PER_KEY} aliases.` });
  // Removed since the request found it (its deletion finished meanwhile).
  if (error instanceof AliasKeyGoneError) return new KmsError('KMS.0207');
  if (error instanceof AliasNotHeldError) return new KmsError('KMS.0308', { detail: "Each alias to delete must be one of the key's." });
  return error;
}

/**
 * Aliases (v2): create-alias, list-aliases, associate-alias, delete-alias. An alias names one key
 * of its project and a key holds up to MAX_ALIASES_PER_KEY; every key-taking operation resolves
 * them (KeyService.keyIdOf). A key keeps its aliases while pending deletion (cancelling the deletion
 * keeps them; using the key through one is KMS.0210, as through its id); when its window ends they
 * are gone with it, and the names are free again at once.
 */
export class AliasService {
  constructor(private readonly deps: AliasServiceDeps) {}

  async createAlias(ctx: RequestContext, request: CreateAliasRequest): Promise<AliasEntity> {
    const key = await this.deps.keys.visibleKey(ctx, request.key_id);
    if (key.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
    await this.releaseAlias(ctx, request.alias);
    const now = this.deps.clock();
    const record: AliasRecord = { projectId: ctx.projectId, alias: request.alias, keyId: key.keyId, createTime: now, updateTime: now };
    await this.deps.store.aliases.insert(record, MAX_ALIASES_PER_KEY).catch((error: unknown) => {
      throw refusal(error);
    });
    ctx.actedOn.aliases = [record.alias];
    this.deps.logger.info({ requestId: ctx.requestId, projectId: ctx.projectId, keyId: key.keyId, alias: record.alias }, 'alias created');
    return entity(record, this.deps.region);
  }

  async associateAlias(ctx: RequestContext, request: AssociateAliasRequest): Promise<AliasEntity> {
    const target = await this.deps.keys.visibleKey(ctx, request.target_key_id);
    if (target.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
    // An alias of a key that is gone is gone with it.
    await this.releaseAlias(ctx, request.alias);
    const moved = await this.deps.store.aliases.associate(ctx.projectId, request.alias, target.keyId, this.deps.clock(), MAX_ALIASES_PER_KEY).catch((error: unknown) => {
      throw refusal(error);
    });
    if (!moved) throw new KmsError('KMS.0207', { detail: 'The project has no such alias.' });
    ctx.actedOn.aliases = [moved.record.alias];
    ctx.actedOn.previousKeyId = moved.previousKeyId;
    this.deps.logger.info(
      { requestId: ctx.requestId, projectId: ctx.projectId, keyId: target.keyId, previousKeyId: moved.previousKeyId, alias: moved.record.alias },
      'alias associated',
    );
    return entity(moved.record, this.deps.region);
  }

  /** All or none: an alias that is not the key's (another key's, or none) refuses the request. */
  async deleteAlias(ctx: RequestContext, request: DeleteAliasRequest): Promise<void> {
    const key = await this.deps.keys.visibleKey(ctx, request.key_id);
    await this.deps.store.aliases.remove(ctx.projectId, key.keyId, request.aliases).catch((error: unknown) => {
      throw refusal(error);
    });
    ctx.actedOn.aliases = [...new Set(request.aliases)];
    this.deps.logger.info({ requestId: ctx.requestId, projectId: ctx.projectId, keyId: key.keyId, aliases: ctx.actedOn.aliases }, 'aliases deleted');
  }

  /**
   * One page of the project's aliases, or of one key's, in alias order (byte order); `marker` is
   * the last alias of the page before, `page_info.next_marker` this page's last when more follow.
   */
  async listAliases(ctx: RequestContext, query: { key_id?: string; limit?: string; marker?: string }): Promise<ListAliasesResponse> {
    const limit = query.limit === undefined ? MAX_LIST_LIMIT : /^\d{1,3}$/.test(query.limit) ? Number(query.limit) : NaN;
    if (!(limit >= 1 && limit <= MAX_LIST_LIMIT)) throw new KmsError('KMS.1601', { detail: `limit must be 1 to ${MAX_LIST_LIMIT}.` });
    const marker = query.marker === undefined || query.marker === '' ? undefined : query.marker;
    if (marker !== undefined && !ALIAS.test(marker)) throw new KmsError('KMS.0308', { detail: 'marker must be the next_marker of a page before.' });
    let keyId: string | undefined;
    if (query.key_id !== undefined) {
      if (!isKeyReferenceShape(query.key_id)) throw new KmsError('KMS.0205');
      keyId = (await this.deps.keys.visibleKey(ctx, query.key_id)).keyId;
    }
    // One more than the page: whether another follows.
    const records = await this.deps.store.aliases.list(ctx.projectId, { ...(keyId === undefined ? {} : { keyId }), ...(marker === undefined ? {} : { after: marker }), limit: limit + 1, now: this.deps.clock() });
    const page = records.slice(0, limit);
    const last = page.at(-1);
    return {
      aliases: page.map((record) => entity(record, this.deps.region)),
      page_info: { current_count: page.length, ...(records.length > limit && last ? { next_marker: last.alias } : {}) },
    };
  }

  /**
   * A key whose deletion window has ended is gone, but its record (and its aliases) stay until the
   * sweep removes it: finish that deletion now, under its lease, so that its aliases are free the
   * moment the window ends (as create-key's key_alias is, KeyService.releaseAlias).
   */
  private async releaseAlias(ctx: RequestContext, alias: string): Promise<void> {
    const holder = await this.deps.store.aliases.get(ctx.projectId, alias);
    if (!holder) return;
    const key = await this.deps.store.keys.get(ctx.projectId, holder.keyId);
    const now = this.deps.clock();
    if (key && isDestroyed(key, now)) await finishDeletionOnce(this.deps.store, this.deps.hsm, key, now, this.deps.logger);
  }
}
