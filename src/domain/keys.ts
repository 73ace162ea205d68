/**
 * Key records as the services see them, whatever store keeps them (src/domain/repositories.ts),
 * and the rules about them that every store must apply the same way.
 */

/** key_state as the API spells it: 1 pending activation, 2 enabled, 3 disabled, 4 pending deletion, 5 pending import. */
export type KeyState = '1' | '2' | '3' | '4' | '5';

export const KEY_STATE = {
  pendingActivation: '1',
  enabled: '2',
  disabled: '3',
  pendingDeletion: '4',
  pendingImport: '5',
} as const satisfies Record<string, KeyState>;

export interface KeyRecord {
  readonly keyId: string;
  readonly projectId: string;
  readonly alias: string;
  readonly description: string;
  readonly keySpec: string;
  readonly keyUsage: string;
  readonly origin: string;
  readonly state: KeyState;
  /** Milliseconds since the epoch. */
  readonly creationDate: number;
  /** When the key material will be destroyed (state 4 only), in milliseconds since the epoch. */
  readonly scheduledDeletionDate: number | null;
  /** The material version new data keys are encrypted under. */
  readonly materialVersion: number;
}

/** Fields a state transition may change. */
export type KeyUpdate = Partial<Pick<KeyRecord, 'alias' | 'description' | 'state' | 'scheduledDeletionDate'>>;

/** One material version of one key: an HSM object. */
export interface MaterialRef {
  readonly keyId: string;
  readonly version: number;
}

/**
 * The deletion rule: a key whose deletion window has ended (state 4, scheduled_deletion_date at or
 * before `now`) is gone, for every read, count and list, before the sweep removes its record.
 * Every store filters by exactly this rule (the store contract suite holds each to it at the
 * boundary); nowhere else may restate it.
 */
export function isDestroyed(record: Pick<KeyRecord, 'state' | 'scheduledDeletionDate'>, now: number): boolean {
  return record.state === KEY_STATE.pendingDeletion && record.scheduledDeletionDate !== null && record.scheduledDeletionDate <= now;
}

export class QuotaExceededError extends Error {
  constructor() {
    super('the project has as many keys as it may');
    this.name = 'QuotaExceededError';
  }
}

export class DuplicateAliasError extends Error {
  constructor() {
    super('alias already used in this project');
    this.name = 'DuplicateAliasError';
  }
}
