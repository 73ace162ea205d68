import type { JobLease, JobLeases } from '../../domain/coordination';
import type { SqliteSession } from './session';

/**
 * Leases of exactly-once job items (migration 6, job_leases). A claim is one conditional upsert:
 * an absent lease is inserted, an expired one taken over, a live one (whoever holds it, this
 * holder too) left alone, and the row comes back only when this holder got it. Renewal and release
 * match the holder, so a holder whose lease was taken over cannot end its successor's.
 */
export class SqliteJobLeases implements JobLeases {
  private readonly statements;

  constructor(
    private readonly session: SqliteSession,
    /** This store instance's name in the table (sqlite-store.ts: host, pid and a random part). */
    private readonly holder: string,
    private readonly clock: () => number = Date.now,
  ) {
    const { db } = session;
    this.statements = {
      claim: db.prepare<{ job: string; item: string; holder: string; now: number; expiresAt: number }, { holder: string }>(
        `INSERT INTO job_leases (job, item, holder, expires_at) VALUES (@job, @item, @holder, @expiresAt)
         ON CONFLICT (job, item) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
           WHERE job_leases.expires_at <= @now
         RETURNING holder`,
      ),
      renew: db.prepare<{ job: string; item: string; holder: string; expiresAt: number }>(
        'UPDATE job_leases SET expires_at = @expiresAt WHERE job = @job AND item = @item AND holder = @holder',
      ),
      release: db.prepare<{ job: string; item: string; holder: string }>('DELETE FROM job_leases WHERE job = @job AND item = @item AND holder = @holder'),
    };
  }

  async tryClaim(job: string, item: string, ttlMs: number): Promise<JobLease | undefined> {
    const now = this.clock();
    const { holder, statements } = this;
    const claimed = await this.session.atomic(() => statements.claim.get({ job, item, holder, now, expiresAt: now + ttlMs }) !== undefined);
    if (!claimed) return undefined;
    return {
      job,
      item,
      renew: (ttl) => this.session.atomic(() => statements.renew.run({ job, item, holder, expiresAt: this.clock() + ttl }).changes === 1),
      release: async () => {
        await this.session.atomic(() => statements.release.run({ job, item, holder }));
      },
    };
  }
}
