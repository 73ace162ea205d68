import { isDestroyed, KEY_STATE } from '../domain/keys';
import type { MetadataStore, TagRepository } from '../domain/repositories';
import { TagKeyGoneError, TagLimitExceededError, type ProjectTag, type Tag, type TagFilter, type TagRemoval } from '../domain/tags';
import { KmsError } from '../errors';
import type {
  BatchCreateKmsTagsRequest,
  CreateKmsTagRequest,
  ListKmsByTagsRequest,
  ListKmsByTagsResponse,
  ListKmsTagsResponse,
  ShowKmsTagsResponse,
} from './api-types';
import type { Clock, RequestContext } from './context';
import { keyDetails } from './key-details';
import { wholeNumber, type KeyService } from './key-service';
import { checkDistinctKeys, checkTagKey, checkTagListSize, checkTagValue, MAX_TAGS_PER_KEY } from './tag-rules';

/** resource_instances: keys per page by default, and at most (the SDK model). */
const DEFAULT_PAGE = 10;
const MAX_PAGE = 1000;
/** resource_instances: the one field `matches` may name (create-key's key_alias), and its value's length. */
const RESOURCE_NAME = 'resource_name';
const MAX_MATCH_LENGTH = 255;

export interface TagServiceDeps {
  readonly store: MetadataStore;
  /** The common lookup of a key by the id a request names (aliases resolve there). */
  readonly keys: KeyService;
  readonly clock: Clock;
  readonly region: string;
}

/**
 * The six tag operations. A key holds at most MAX_TAGS_PER_KEY tags, written all or none; a key
 * pending deletion keeps its tags (they are read and found) but is not tagged or untagged
 * (KMS.0210), and a key whose window has ended is gone with them. Only the credential's
 * permission allows them: no grant operation names one. Each is audited as every operation is, by
 * the key it acted on; tag keys and values are the client's strings, and stay out of the trail.
 */
export class TagService {
  constructor(private readonly deps: TagServiceDeps) {}

  /** Sets one tag (create-kms-tag). */
  async createKmsTag(ctx: RequestContext, keyId: string, request: CreateKmsTagRequest): Promise<void> {
    const tag = checkedTag(request.tag);
    await this.change(ctx, keyId, (tags, id) => tags.put(id, [tag], MAX_TAGS_PER_KEY));
  }

  /** Sets or removes several tags at once, all or none (batch tags action). */
  async batchTags(ctx: RequestContext, keyId: string, request: BatchCreateKmsTagsRequest): Promise<void> {
    checkTagListSize(request.tags.length);
    if (request.action === 'create') {
      const tags = request.tags.map(checkedTag);
      checkDistinctKeys(tags.map((tag) => tag.key));
      await this.change(ctx, keyId, (store, id) => store.put(id, tags, MAX_TAGS_PER_KEY));
      return;
    }
    // Removal names a tag by its key, and by its value too when one is given.
    const removals: TagRemoval[] = request.tags.map((tag) => {
      checkTagKey(tag.key);
      if (tag.value === undefined) return { key: tag.key };
      checkTagValue(tag.value);
      return { key: tag.key, value: tag.value };
    });
    await this.change(ctx, keyId, (store, id) => store.remove(id, removals));
  }

  /** Removes one tag, named by its key (delete-tag): KMS.0416 when the key has no such tag. */
  async deleteTag(ctx: RequestContext, keyId: string, tagKey: string): Promise<void> {
    checkTagKey(tagKey);
    const removed = await this.change(ctx, keyId, (tags, id) => tags.remove(id, [{ key: tagKey }]));
    if (removed === 0) throw new KmsError('KMS.0416', { detail: 'The key has no tag of that key.' });
  }

  /** A key's tags (show-kms-tags); `existTagsNum` is camelCase, as the SDK reads it. */
  async showKmsTags(ctx: RequestContext, keyId: string): Promise<ShowKmsTagsResponse> {
    const record = await this.deps.keys.visibleKey(ctx, keyId);
    const tags = await this.deps.store.tags.forKey(record.keyId);
    return { tags: tags.map(tagPair), existTagsNum: tags.length };
  }

  /** The project's tag keys with their values (list-kms-tags). */
  async listKmsTags(ctx: RequestContext): Promise<ListKmsTagsResponse> {
    const tags = await this.deps.store.tags.projectTags(ctx.projectId, this.deps.clock());
    return { tags: tags.map((tag) => ({ key: tag.key, values: [...tag.values] })) };
  }

  /** The keys a tag search finds: a page of them (`filter`) or how many (`count`) (resource_instances action). */
  async listKmsByTags(ctx: RequestContext, request: ListKmsByTagsRequest): Promise<ListKmsByTagsResponse> {
    const filter = tagFilter(request, this.deps.clock());
    const { store, region } = this.deps;
    if (request.action === 'count') {
      if (request.offset !== undefined) throw new KmsError('KMS.0418', { detail: 'count takes no offset.' });
      return { total_count: await store.tags.count(ctx.projectId, filter) };
    }
    const limit = request.limit === undefined ? DEFAULT_PAGE : wholeNumber(request.limit, 'KMS.1601', 1, MAX_PAGE);
    const offset = request.offset === undefined ? 0 : wholeNumber(request.offset, 'KMS.0417', 0, 2 ** 31);
    const { keys, total } = await store.tags.find(ctx.projectId, filter, { offset, limit });
    const resources: NonNullable<ListKmsByTagsResponse['resources']> = [];
    for (const { record, tags } of keys) {
      const rotationEnabled = (await store.rotations.state(record.keyId)).enabled;
      resources.push({ resource_id: record.keyId, resource_detail: keyDetails(record, region, rotationEnabled), resource_name: record.alias, tags: tags.map(tagPair) });
    }
    return { resources, total_count: total };
  }

  /**
   * Runs a change of a key's tags: the key found by the common lookup (KMS.0207), then read again
   * and locked in the transaction that writes, so that a deletion scheduled meanwhile is seen
   * (KMS.0210) and a key removed meanwhile takes no tag.
   */
  private async change<T>(ctx: RequestContext, keyId: string, write: (tags: TagRepository, keyId: string) => Promise<T>): Promise<T> {
    const found = await this.deps.keys.visibleKey(ctx, keyId);
    const now = this.deps.clock();
    try {
      return await this.deps.store.withTransaction(async (tx) => {
        const current = await tx.keys.get(ctx.projectId, found.keyId, { lock: true });
        if (!current || isDestroyed(current, now)) throw new KmsError('KMS.0207');
        if (current.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
        return await write(tx.tags, current.keyId);
      });
    } catch (error) {
      if (error instanceof TagLimitExceededError) throw new KmsError('KMS.0409', { detail: `A key holds at most ${MAX_TAGS_PER_KEY} tags.` });
      if (error instanceof TagKeyGoneError) throw new KmsError('KMS.0207');
      throw error;
    }
  }
}

function checkedTag(tag: { key: string; value?: string }): Tag {
  checkTagKey(tag.key);
  const value = tag.value ?? '';
  checkTagValue(value);
  return { key: tag.key, value };
}

function tagPair(tag: Tag): { key: string; value: string } {
  return { key: tag.key, value: tag.value };
}

/** A resource_instances request's search, checked. */
function tagFilter(request: ListKmsByTagsRequest, now: number): TagFilter {
  const entries = request.tags ?? [];
  if (entries.length > MAX_TAGS_PER_KEY) throw new KmsError('KMS.0407', { detail: `A search names at most ${MAX_TAGS_PER_KEY} tag keys.` });
  const tags: ProjectTag[] = entries.map((entry) => {
    checkTagKey(entry.key);
    const values = entry.values ?? [];
    if (values.length > MAX_TAGS_PER_KEY) throw new KmsError('KMS.0413', { detail: `A tag key is searched with at most ${MAX_TAGS_PER_KEY} values.` });
    for (const value of values) checkTagValue(value);
    if (new Set(values).size !== values.length) throw new KmsError('KMS.0412', { detail: 'A tag value is named more than once.' });
    return { key: entry.key, values };
  });
  checkDistinctKeys(tags.map((tag) => tag.key));
  const matches = request.matches ?? [];
  if (matches.length > 1) throw new KmsError('KMS.0415', { detail: `matches names ${RESOURCE_NAME} once.` });
  const match = matches[0];
  if (match === undefined) return { tags, now };
  if (match.key !== RESOURCE_NAME) throw new KmsError('KMS.0403', { detail: `The one match key is ${RESOURCE_NAME}.` });
  const length = [...match.value].length;
  if (length < 1 || length > MAX_MATCH_LENGTH) throw new KmsError('KMS.0402', { detail: `A match value is 1 to ${MAX_MATCH_LENGTH} characters.` });
  // Huawei's resource_name match is fuzzy and ignores case; an alias is ASCII (create-key's pattern), so ASCII case it is.
  return { tags, nameContains: match.value.replace(/[A-Z]/g, (letter) => letter.toLowerCase()), now };
}
