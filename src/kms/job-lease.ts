import type { JobLeases } from '../domain/coordination';

/**
 * The exactly-once jobs' names in the store's lease table, and how long a lease lasts: longer
 * than any one item takes (a few HSM calls, each bounded by KMS_HSM_CALL_TIMEOUT_MS), short enough
 * that an instance that died mid-item leaves it to another within a few sweeps.
 */
export const JOBS = {
  /** Destroying the material and record of a key whose deletion window has ended. */
  deletion: 'key-deletion',
  /** Rolling back a key creation that never finished. */
  creationRollback: 'key-creation-rollback',
  /** Rolling back a rotation that never finished. */
  rotationRollback: 'key-rotation-rollback',
} as const;

export const JOB_LEASE_TTL_MS = 120_000;

/**
 * Runs `work` for one item of a job if this process gets its lease (released when done, whether
 * `work` succeeded or not, so that the next pass, here or elsewhere, may retry a failure).
 * `claimed` false: another process holds it, and `work` did not run.
 */
export async function underLease<T>(leases: JobLeases, job: string, item: string, work: () => Promise<T>): Promise<{ claimed: true; value: T } | { claimed: false }> {
  const lease = await leases.tryClaim(job, item, JOB_LEASE_TTL_MS);
  if (!lease) return { claimed: false };
  try {
    return { claimed: true, value: await work() };
  } finally {
    await lease.release();
  }
}
