import type { JobLease, JobLeases, LeaseOutcome, StoreObserver } from '../domain/coordination';

/**
 * A store's observers (MetadataStore.observe), one place for both stores: each store reports its
 * change feed's events here, and wraps its leases in {@link observedLeases} so that every claim
 * and renewal is counted the same way whichever store made it.
 */
export class StoreEvents implements StoreObserver {
  private readonly observers: StoreObserver[] = [];

  add(observer: StoreObserver): void {
    this.observers.push(observer);
  }

  changeDelivered(seconds: number): void {
    for (const observer of this.observers) observer.changeDelivered(seconds);
  }

  changeFeedReconnected(): void {
    for (const observer of this.observers) observer.changeFeedReconnected();
  }

  leaseOutcome(job: string, outcome: LeaseOutcome): void {
    for (const observer of this.observers) observer.leaseOutcome(job, outcome);
  }
}

/** `leases`, telling `events` of each claim (claimed, or held elsewhere) and of each renewal that found its lease lost. */
export function observedLeases(leases: JobLeases, events: StoreObserver): JobLeases {
  return {
    async tryClaim(job: string, item: string, ttlMs: number): Promise<JobLease | undefined> {
      const lease = await leases.tryClaim(job, item, ttlMs);
      events.leaseOutcome(job, lease ? 'claimed' : 'held_elsewhere');
      if (!lease) return undefined;
      return {
        job: lease.job,
        item: lease.item,
        async renew(ttl: number): Promise<boolean> {
          const kept = await lease.renew(ttl);
          if (!kept) events.leaseOutcome(job, 'lost');
          return kept;
        },
        release: () => lease.release(),
      };
    },
  };
}
