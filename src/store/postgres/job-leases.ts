import { randomUUID } from 'node:crypto';
import type { JobLease, JobLeases } from '../../domain/coordination';
import type { Executor } from './executor';

/**
 * Exactly-once job items across instances (migration 6's job_leases). A lease is a row with an
 * expiry, claimed in two steps, neither of which waits on another claimer:
 * - an expired lease is taken over by `UPDATE … WHERE (SELECT … expired FOR UPDATE SKIP LOCKED) …
 *   RETURNING`: of several claimers at once, the one that locks the row takes it; the others skip
 *   it, and a claimer that reads it after that commit finds it live;
 * - an item without a row is claimed by `INSERT … ON CONFLICT DO NOTHING RETURNING`: the first
 *   insert wins, the others conflict and get nothing.
 * Each claim is its own holder (a random id): only it renews or releases, and a lease that expired
 * and was taken over is no longer its old holder's. Expiry is on the database's clock
 * (clock_timestamp()), the one clock every instance shares. Not session advisory locks: those
 * vanish silently with a dropped connection while their holder goes on working.
 */

const EXPIRY = `clock_timestamp() + $4::float8 * interval '1 millisecond'`;

function milliseconds(ttlMs: number): number {
  if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new RangeError(`a lease lasts a whole number of milliseconds, at least 1: ${ttlMs}`);
  return ttlMs;
}

export class PostgresJobLeases implements JobLeases {
  constructor(private readonly db: Executor) {}

  async tryClaim(job: string, item: string, ttlMs: number): Promise<JobLease | undefined> {
    const holder = randomUUID();
    const values = [job, item, holder, milliseconds(ttlMs)];
    const takenOver = await this.db.query(
      `UPDATE job_leases SET holder = $3, expires_at = ${EXPIRY}
       WHERE (job, item) = (SELECT job, item FROM job_leases WHERE job = $1 AND item = $2 AND expires_at <= clock_timestamp() FOR UPDATE SKIP LOCKED)
       RETURNING holder`,
      values,
    );
    if (takenOver.rowCount === 1) return new PostgresJobLease(this.db, job, item, holder);
    const inserted = await this.db.query(
      `INSERT INTO job_leases (job, item, holder, expires_at) VALUES ($1, $2, $3, ${EXPIRY}) ON CONFLICT (job, item) DO NOTHING RETURNING holder`,
      values,
    );
    return inserted.rowCount === 1 ? new PostgresJobLease(this.db, job, item, holder) : undefined;
  }
}

class PostgresJobLease implements JobLease {
  constructor(
    private readonly db: Executor,
    readonly job: string,
    readonly item: string,
    private readonly holder: string,
  ) {}

  async renew(ttlMs: number): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE job_leases SET expires_at = ${EXPIRY} WHERE job = $1 AND item = $2 AND holder = $3`,
      [this.job, this.item, this.holder, milliseconds(ttlMs)],
    );
    return rowCount === 1;
  }

  async release(): Promise<void> {
    // Deleted, not marked: a released item leaves no row behind.
    await this.db.query('DELETE FROM job_leases WHERE job = $1 AND item = $2 AND holder = $3', [this.job, this.item, this.holder]);
  }
}
