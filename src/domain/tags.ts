/**
 * Key tags (src/domain/repositories.ts, TagRepository): key/value pairs an operator puts on a key to
 * find and account for it. A tag key is unique on its key; tags go with their key.
 */
import type { KeyRecord } from './keys';

export interface Tag {
  readonly key: string;
  /** May be empty. */
  readonly value: string;
}

/** A tag to remove: by its key, and only when it holds `value` if one is given. */
export interface TagRemoval {
  readonly key: string;
  readonly value?: string;
}

/** A tag key of a project with every value its keys give it (list-kms-tags). */
export interface ProjectTag {
  readonly key: string;
  readonly values: readonly string[];
}

/**
 * Which keys of a project a tag search finds (resource_instances): those holding, for every entry
 * of `tags` (AND), that tag key with one of its `values` (OR; no values: any value), and whose
 * alias contains `nameContains` ignoring ASCII case (the alias is ASCII: create-key's pattern).
 */
export interface TagFilter {
  readonly tags: readonly ProjectTag[];
  /** Lower-case ASCII already (the store folds only the alias). */
  readonly nameContains?: string;
  /** The deletion rule's now (src/domain/keys.ts): a key whose window has ended is not found. */
  readonly now: number;
}

/** A key found by a tag search, with its tags. */
export interface TaggedKey {
  readonly record: KeyRecord;
  /** In tag key order (code points). */
  readonly tags: readonly Tag[];
}

/** The key would hold more tags than it may: nothing was written. */
export class TagLimitExceededError extends Error {
  constructor() {
    super('the key has as many tags as it may');
    this.name = 'TagLimitExceededError';
  }
}

/** The key was removed between the caller's check and the write. */
export class TagKeyGoneError extends Error {
  constructor() {
    super('the key of the tags no longer exists');
    this.name = 'TagKeyGoneError';
  }
}
