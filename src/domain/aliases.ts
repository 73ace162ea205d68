/**
 * Aliases (v2: create-alias, list-aliases, associate-alias, delete-alias) as the services see them,
 * whatever store keeps them (src/domain/repositories.ts, AliasRepository). An alias names one key of
 * its project; a key may hold several. They are not create-key's `key_alias`, which is a label
 * each key has and no request resolves (README, "Aliases").
 */
export interface AliasRecord {
  readonly projectId: string;
  /** `alias/…`, unique in its project. */
  readonly alias: string;
  readonly keyId: string;
  /** Milliseconds since the epoch. */
  readonly createTime: number;
  /** When it last moved to another key (associate-alias), or createTime. */
  readonly updateTime: number;
}

/** The alias is taken in its project (by any key, whatever its state). */
export class AliasTakenError extends Error {
  constructor() {
    super('alias already used in this project');
    this.name = 'AliasTakenError';
  }
}

/** The key already holds as many aliases as it may. */
export class AliasQuotaExceededError extends Error {
  constructor() {
    super('the key holds as many aliases as it may');
    this.name = 'AliasQuotaExceededError';
  }
}

/** The key the alias was to name is gone (its record removed meanwhile). */
export class AliasKeyGoneError extends Error {
  constructor() {
    super('the key is gone');
    this.name = 'AliasKeyGoneError';
  }
}

/** Some of the aliases to delete are not the key's (none was deleted). */
export class AliasNotHeldError extends Error {
  constructor(readonly aliases: readonly string[]) {
    super(`${aliases.length} of the aliases are not the key's`);
    this.name = 'AliasNotHeldError';
  }
}
