import type { Logger } from 'pino';
import { KmsError } from '../errors';
import type { Hsm } from '../hsm/hsm';
import type { JobLeases } from '../domain/coordination';
import type { RotationRepository } from '../domain/repositories';
import type { RotationReason } from '../domain/rotation';
import type { Clock } from './context';
import { JOBS, underLease } from './job-lease';

export interface KeyRotatorDeps {
  readonly rotations: RotationRepository;
  /** Leases of the sweeps' rotations and of the roll-backs of interrupted ones (exactly once across processes). */
  readonly leases: JobLeases;
  readonly hsm: Hsm;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Seals per material version after which the key is rotated (the GCM IV budget's share). */
  readonly sealBudget: number;
  /** Told of every rotation this process makes or fails to make (the metrics). */
  readonly observer?: RotationObserver;
}

/** What the rotator reports, for the metrics (src/metrics implements it). Must be cheap and must not throw. */
export interface RotationObserver {
  /** A new material version became the key's current one. */
  rotated(reason: RotationReason): void;
  /** A claimed rotation failed (and was undone, or left for reconciliation). */
  rotationFailed(reason: RotationReason): void;
}

export interface RotationReport {
  /** Interrupted rotations rolled back (their HSM object destroyed, their claim released). */
  readonly rolledBack: number;
  /** Rotations made by this pass: scheduled ones come due, and versions past the seal budget. */
  readonly rotated: number;
  /** Rotations or roll-backs that failed (logged; the next pass tries again). */
  readonly failed: number;
  /** Rotations or roll-backs left to another process, which held their lease (or, a roll-back, had done it). */
  readonly skipped: number;
}

/**
 * Rotation of CMK material: a new AES-256 object in the HSM for the same key id with the next
 * material version, made crash-safe as key creation is. The claim (and the version's record) is
 * written first, then the HSM generates the object, then one transaction makes it the key's
 * current version. A crash in between leaves a claim that reconciliation rolls back (material
 * first, then the claim), after which the rotation, if still due, happens again.
 */
export class KeyRotator {
  constructor(private readonly deps: KeyRotatorDeps) {}

  get sealBudget(): number {
    return this.deps.sealBudget;
  }

  /**
   * Rotates one key if `reason`'s condition holds and no rotation of it is under way. Returns the
   * new version, or undefined when nothing was claimed (not due, or another process has it).
   */
  async rotate(keyId: string, projectId: string, reason: RotationReason): Promise<number | undefined> {
    let version: number | undefined;
    try {
      version = await this.claimAndRotate(keyId, projectId, reason);
    } catch (error) {
      this.deps.observer?.rotationFailed(reason);
      throw error;
    }
    if (version !== undefined) this.deps.observer?.rotated(reason);
    return version;
  }

  private async claimAndRotate(keyId: string, projectId: string, reason: RotationReason): Promise<number | undefined> {
    const { rotations, hsm, clock, logger } = this.deps;
    const claimedAt = clock();
    const version = await rotations.claim(keyId, reason, claimedAt, this.deps.sealBudget);
    if (version === undefined) return undefined;
    const material = { keyId, version };
    try {
      await hsm.generateKey(material);
    } catch (error) {
      // The HSM may have made the object before failing: destroy it, then release the claim. If
      // that fails too, the claim stays for reconciliation, which does the same later.
      try {
        await hsm.destroyKey(material);
        await rotations.rollBack(keyId, version);
      } catch (undoError) {
        logger.error({ keyId, projectId, version, err: undoError }, 'could not undo a failed rotation: its claim (and perhaps its material) stays until reconciliation rolls it back');
      }
      throw error;
    }
    if (!(await rotations.finish(keyId, version, claimedAt, clock()))) {
      // Reconciliation took the rotation for an interrupted one (the HSM took over the grace): undo it.
      await hsm.destroyKey(material).catch((undoError: unknown) => {
        logger.error({ keyId, projectId, version, err: undoError }, 'could not destroy the material of a rotation rolled back meanwhile: the token holds material that no record names');
      });
      throw new KmsError('KMS.0103', { cause: new Error(`rotation of ${keyId} to version ${version} was rolled back while the HSM generated the key`) });
    }
    logger.info({ keyId, projectId, version, reason }, 'key rotated');
    return version;
  }

  /**
   * Rolls back rotations claimed at or before `before` that never finished: destroys the claimed
   * version's object (none is fine), then forgets the version and releases the claim. Each under
   * its lease: a claim whose lease another process holds is left to it, and one that is gone (or
   * claimed anew) once the lease is held was finished by another.
   */
  async reconcile(before: number): Promise<Pick<RotationReport, 'rolledBack' | 'failed' | 'skipped'>> {
    const { rotations, hsm, logger } = this.deps;
    let rolledBack = 0;
    let failed = 0;
    let skipped = 0;
    for (const claim of await rotations.claimedBefore(before)) {
      try {
        const outcome = await underLease(this.deps.leases, JOBS.rotationRollback, `${claim.keyId}/${claim.version}`, async () => {
          const current = await rotations.claimedBefore(before);
          if (!current.some((other) => other.keyId === claim.keyId && other.version === claim.version && other.claimedAt === claim.claimedAt)) return false;
          await hsm.destroyKey({ keyId: claim.keyId, version: claim.version });
          await rotations.rollBack(claim.keyId, claim.version);
          return true;
        }, { logger });
        if (!outcome.claimed || !outcome.value) {
          skipped++;
          continue;
        }
        rolledBack++;
        logger.warn({ keyId: claim.keyId, projectId: claim.projectId, version: claim.version }, 'rolled back an interrupted key rotation');
      } catch (error) {
        failed++;
        logger.error({ keyId: claim.keyId, projectId: claim.projectId, version: claim.version, err: error }, 'could not roll back an interrupted key rotation; retrying next pass');
      }
    }
    return { rolledBack, failed, skipped };
  }

  /** Rotates every key whose scheduled rotation is due, or whose current version is past the seal budget. */
  async rotateDue(): Promise<Pick<RotationReport, 'rotated' | 'failed' | 'skipped'>> {
    const { rotations, clock } = this.deps;
    const scheduled = (await rotations.due(clock())).map((key) => ({ ...key, reason: 'scheduled' as const }));
    const used = (await rotations.overBudget(this.deps.sealBudget)).map((key) => ({ ...key, reason: 'budget' as const }));
    return this.rotateAll([...scheduled, ...used]);
  }

  /** Rotates every key whose current version is past the seal budget (after counts were flushed). */
  async rotateOverBudget(): Promise<Pick<RotationReport, 'rotated' | 'failed' | 'skipped'>> {
    return this.rotateAll((await this.deps.rotations.overBudget(this.deps.sealBudget)).map((key) => ({ ...key, reason: 'budget' as const })));
  }

  /**
   * The sweeps' rotations, each under the key's rotation lease: a key whose lease another process
   * holds is left to it. The claim inside (rotate) checks again that the rotation is still due.
   */
  private async rotateAll(
    candidates: ReadonlyArray<{ keyId: string; projectId: string; reason: RotationReason }>,
  ): Promise<Pick<RotationReport, 'rotated' | 'failed' | 'skipped'>> {
    let rotated = 0;
    let failed = 0;
    let skipped = 0;
    for (const { keyId, projectId, reason } of candidates) {
      try {
        const outcome = await underLease(this.deps.leases, JOBS.rotation, keyId, () => this.rotate(keyId, projectId, reason), { logger: this.deps.logger });
        if (!outcome.claimed) skipped++;
        else if (outcome.value !== undefined) rotated++;
      } catch (error) {
        failed++;
        this.deps.logger.error({ keyId, projectId, reason, err: error }, 'key rotation failed; retrying next pass');
      }
    }
    return { rotated, failed, skipped };
  }
}
