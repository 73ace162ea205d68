/** Grant records (src/domain/repositories.ts): each lets a principal use one key for the operations it lists. */

export type GranteeType = 'user' | 'domain';

export interface GrantRecord {
  /** 64 lower-case hex digits. */
  readonly grantId: string;
  readonly keyId: string;
  /** The key's project. */
  readonly projectId: string;
  readonly name: string;
  /** A principal id ('user'), or a project id ('domain': every credential of that project). */
  readonly granteePrincipal: string;
  readonly granteeType: GranteeType;
  readonly retiringPrincipal: string | null;
  readonly issuingPrincipal: string;
  readonly operations: readonly string[];
  /** Milliseconds since the epoch. */
  readonly creationDate: number;
  /** The grant whose create-grant allowed this one; null when the key's administrator made it (or it predates migration 5). */
  readonly parentGrantId: string | null;
}

/** A grant removed because the grant it was made on (`parentGrantId`) was removed. */
export interface CascadedRemoval {
  readonly grantId: string;
  readonly parentGrantId: string;
}

/** Who asks, as grants name principals: a principal id, and the project its credential belongs to. */
export interface GrantPrincipal {
  readonly principalId: string;
  readonly projectId: string;
}

/** One page of a listing, of what exists at `now` (the deletion rule, src/domain/keys.ts). */
export interface Page {
  readonly offset: number;
  readonly limit: number;
  readonly now: number;
}

export class GrantQuotaExceededError extends Error {
  constructor() {
    super('the key has as many grants as it may');
    this.name = 'GrantQuotaExceededError';
  }
}

/** The grant whose authority a new grant was made on was removed between the check and the insert. */
export class GrantParentGoneError extends Error {
  constructor() {
    super('the grant that allowed the new grant no longer exists');
    this.name = 'GrantParentGoneError';
  }
}

/** The key was removed between the check and the insert. */
export class GrantKeyGoneError extends Error {
  constructor() {
    super('the key of the grant no longer exists');
    this.name = 'GrantKeyGoneError';
  }
}
