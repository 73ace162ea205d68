/** Rotation settings, rotations under way and seal counts (src/domain/repositories.ts). */

export const DEFAULT_ROTATION_INTERVAL_DAYS = 365;
export const DAY_MS = 86_400_000;

/** Why a rotation happens; the claim's condition depends on it. */
export type RotationReason = 'on-demand' | 'scheduled' | 'budget';

export interface RotationState {
  readonly enabled: boolean;
  readonly intervalDays: number;
  /** When the next scheduled rotation is due (ms since the epoch); null while rotation is off. */
  readonly nextRotationAt: number | null;
  readonly lastRotationAt: number | null;
}

/** A key never configured: rotation off at the default interval. */
export const ROTATION_OFF: RotationState = {
  enabled: false,
  intervalDays: DEFAULT_ROTATION_INTERVAL_DAYS,
  nextRotationAt: null,
  lastRotationAt: null,
};

/** The settings a rotation-settings change writes. */
export type RotationSettings = Pick<RotationState, 'enabled' | 'intervalDays' | 'nextRotationAt'>;

/** When the rotation after one finished at `now` is due: the rule every store applies on finish. */
export function nextRotationAfter(settings: Pick<RotationState, 'enabled' | 'intervalDays'>, now: number): number | null {
  return settings.enabled ? now + settings.intervalDays * DAY_MS : null;
}

export interface MaterialUsage {
  readonly version: number;
  readonly createdAt: number;
  /** Encryptions under this version written to the store so far (the flushed count). */
  readonly seals: number;
}

/** A rotation under way: the version it makes and when it was claimed. */
export interface RotationClaim {
  readonly keyId: string;
  readonly projectId: string;
  readonly version: number;
  readonly claimedAt: number;
}

/** A key that may need a rotation now. */
export interface RotationCandidate {
  readonly keyId: string;
  readonly projectId: string;
}

export interface SealCount {
  readonly keyId: string;
  readonly version: number;
  readonly count: number;
}
