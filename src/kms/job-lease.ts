import type { Logger } from 'pino';
import type { JobLeases } from '../domain/coordination';

/**
 * The exactly-once jobs' names in the store's lease table (item: the key id, or key id/version
 * for a rotation's roll-back), and how long a lease lasts unless renewed: an instance that died
 * mid-item leaves it to another within that.
 */
export const JOBS = {
  /** Destroying the material and record of a key whose deletion window has ended. */
  deletion: 'key-deletion',
  /** Rolling back a key creation that never finished. */
  creationRollback: 'key-creation-rollback',
  /** Rolling back a rotation that never finished. */
  rotationRollback: 'key-rotation-rollback',
  /** A scheduled rotation come due, or one past the seal budget (the sweeps'; on-demand ones take no lease). */
  rotation: 'key-rotation',
  /**
   * A step of an imported key's import (item: the key id): a new wrapping key, an import, a
   * deletion or expiry of the material, a wrapping key's clean-up (import-service.ts, import-sweeps.ts).
   */
  keyImport: 'key-import',
} as const;

export const JOB_LEASE_TTL_MS = 120_000;

/** Where underLease reports renewals that failed, and how long its lease lasts unless renewed. */
export interface LeaseOptions {
  readonly logger: Logger;
  readonly ttlMs?: number;
}

/**
 * Runs `work` for one item of a job if this process gets its lease, renewing it every third of
 * its ttl while `work` runs (an item may take many HSM calls, each up to KMS_PKCS11_CALL_TIMEOUT_MS)
 * and releasing it when done, whether `work` succeeded or not, so that the next pass, here or
 * elsewhere, may retry a failure. `claimed` false: another holder has it, and `work` did not run.
 *
 * A lease can still be lost (this process stalled past the ttl): `work` must check, under the
 * lease, that its item is still to be done, and each of its steps must be harmless done twice.
 * A renewal that fails (the store unreachable) is retried by the next one and logged, as is the
 * first that finds the lease lost: either means another instance may take the item over.
 */
export async function underLease<T>(
  leases: JobLeases,
  job: string,
  item: string,
  work: () => Promise<T>,
  { logger, ttlMs = JOB_LEASE_TTL_MS }: LeaseOptions,
): Promise<{ claimed: true; value: T } | { claimed: false }> {
  const lease = await leases.tryClaim(job, item, ttlMs);
  if (!lease) return { claimed: false };
  let lostLogged = false;
  // A renewal still under way when the work ends may answer after the release removed the lease:
  // that is no loss.
  let ended = false;
  const renewal = setInterval(() => {
    lease.renew(ttlMs).then(
      (kept) => {
        if (kept || lostLogged || ended) return;
        lostLogged = true;
        logger.warn({ job, item }, 'a job lease expired and was taken over while its work ran here: the item may be worked on twice');
      },
      (error: unknown) => logger.warn({ job, item, err: error }, 'could not renew a job lease; retrying at the next renewal'),
    );
  }, ttlMs / 3);
  renewal.unref();
  try {
    return { claimed: true, value: await work() };
  } finally {
    ended = true;
    clearInterval(renewal);
    await lease.release();
  }
}
