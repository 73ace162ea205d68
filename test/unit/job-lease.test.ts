import type { JobLease, JobLeases } from '../../src/domain/coordination';
import { underLease } from '../../src/kms/job-lease';

/**
 * underLease (src/kms/job-lease.ts): a lease is renewed while its work runs, so that an item
 * slower than the lease's ttl is not taken over by another instance meanwhile, and released when
 * the work ends, whether it succeeded or not. Jest's fake timers drive the renewal.
 */

const TTL_MS = 9000;

/** One item's lease, in memory, counting what was asked of it. */
function oneLease(): JobLeases & { renewals: number; released: number; held: boolean } {
  const leases = {
    renewals: 0,
    released: 0,
    held: false,
    async tryClaim(job: string, item: string): Promise<JobLease | undefined> {
      if (leases.held) return undefined;
      leases.held = true;
      return {
        job,
        item,
        renew: async () => {
          leases.renewals++;
          return true;
        },
        release: async () => {
          leases.released++;
          leases.held = false;
        },
      };
    },
  };
  return leases;
}

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

it('renews the lease every third of its ttl while the work runs, and not after', async () => {
  const leases = oneLease();
  let finish!: () => void;
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const outcome = underLease(
    leases,
    'job',
    'item',
    () =>
      new Promise<string>((resolve) => {
        started();
        finish = () => resolve('done');
      }),
    TTL_MS,
  );
  await running;
  jest.advanceTimersByTime(TTL_MS);
  expect(leases.renewals).toBe(3);
  // Meanwhile nobody else gets it.
  expect(await underLease(leases, 'job', 'item', async () => 'twice', TTL_MS)).toEqual({ claimed: false });
  finish();
  expect(await outcome).toEqual({ claimed: true, value: 'done' });
  expect(leases.released).toBe(1);
  jest.advanceTimersByTime(TTL_MS);
  expect(leases.renewals).toBe(3);
});

it('releases the lease when the work fails, so that the next pass may retry it', async () => {
  const leases = oneLease();
  await expect(underLease(leases, 'job', 'item', async () => Promise.reject(new Error('HSM down')), TTL_MS)).rejects.toThrow('HSM down');
  expect(leases.released).toBe(1);
  expect(await underLease(leases, 'job', 'item', async () => 'retried', TTL_MS)).toEqual({ claimed: true, value: 'retried' });
});
