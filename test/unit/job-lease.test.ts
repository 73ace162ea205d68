import pino from 'pino';
import type { JobLease, JobLeases } from '../../src/domain/coordination';
import { underLease } from '../../src/kms/job-lease';

/**
 * underLease (src/kms/job-lease.ts): a lease is renewed while its work runs, so that an item
 * slower than the lease's ttl is not taken over by another instance meanwhile, and released when
 * the work ends, whether it succeeded or not. Jest's fake timers drive the renewal.
 */

const TTL_MS = 9000;

/** What underLease logged, as parsed lines. */
function capturedLogger(): { options: { logger: pino.Logger; ttlMs: number }; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { options: { logger, ttlMs: TTL_MS }, lines };
}

const OPTIONS = capturedLogger().options;

/** One item's lease, in memory, counting what was asked of it; `renewal` says how each renewal ends. */
function oneLease(renewal: () => Promise<boolean> = async () => true): JobLeases & { renewals: number; released: number; held: boolean } {
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
        renew: () => {
          leases.renewals++;
          return renewal();
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
    OPTIONS,
  );
  await running;
  jest.advanceTimersByTime(TTL_MS);
  expect(leases.renewals).toBe(3);
  // Meanwhile nobody else gets it.
  expect(await underLease(leases, 'job', 'item', async () => 'twice', OPTIONS)).toEqual({ claimed: false });
  finish();
  expect(await outcome).toEqual({ claimed: true, value: 'done' });
  expect(leases.released).toBe(1);
  jest.advanceTimersByTime(TTL_MS);
  expect(leases.renewals).toBe(3);
});

it('releases the lease when the work fails, so that the next pass may retry it', async () => {
  const leases = oneLease();
  await expect(underLease(leases, 'job', 'item', async () => Promise.reject(new Error('HSM down')), OPTIONS)).rejects.toThrow('HSM down');
  expect(leases.released).toBe(1);
  expect(await underLease(leases, 'job', 'item', async () => 'retried', OPTIONS)).toEqual({ claimed: true, value: 'retried' });
});

/** Runs underLease over `leases` with work that lasts until `finish` is called. */
function runUntilFinished(leases: JobLeases, options: typeof OPTIONS): { outcome: Promise<unknown>; finish: () => void } {
  let finish!: () => void;
  const outcome = underLease(leases, 'key-deletion', 'key-1', () => new Promise<void>((resolve) => (finish = resolve)), options);
  return { outcome, finish: () => finish() };
}

it('logs a renewal that failed, with the job and item, and renews again at the next tick', async () => {
  let failures = 1;
  const leases = oneLease(async () => {
    if (failures-- > 0) throw new Error('database unreachable');
    return true;
  });
  const { options, lines } = capturedLogger();
  const run = runUntilFinished(leases, options);
  await jest.advanceTimersByTimeAsync(TTL_MS);
  expect(leases.renewals).toBe(3);
  const warnings = lines.filter((line) => line.level === 40);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ job: 'key-deletion', item: 'key-1', msg: 'could not renew a job lease; retrying at the next renewal', err: { message: 'database unreachable' } });
  run.finish();
  await run.outcome;
  expect(leases.released).toBe(1);
});

it('logs once that the lease was lost, however many renewals find it so', async () => {
  const leases = oneLease(async () => false);
  const { options, lines } = capturedLogger();
  const run = runUntilFinished(leases, options);
  await jest.advanceTimersByTimeAsync(2 * TTL_MS);
  expect(leases.renewals).toBe(6);
  expect(lines.filter((line) => line.level === 40)).toEqual([
    expect.objectContaining({ job: 'key-deletion', item: 'key-1', msg: 'a job lease expired and was taken over while its work ran here: the item may be worked on twice' }),
  ]);
  run.finish();
  await run.outcome;
});

it('logs nothing while the renewals succeed', async () => {
  const leases = oneLease();
  const { options, lines } = capturedLogger();
  const run = runUntilFinished(leases, options);
  await jest.advanceTimersByTimeAsync(2 * TTL_MS);
  expect(leases.renewals).toBe(6);
  run.finish();
  await run.outcome;
  expect(lines).toEqual([]);
});

it('does not call a lease lost when a renewal under way as the work ends answers after the release', async () => {
  let answer!: (kept: boolean) => void;
  const leases = oneLease(() => new Promise<boolean>((resolve) => (answer = resolve)));
  const { options, lines } = capturedLogger();
  const run = runUntilFinished(leases, options);
  await jest.advanceTimersByTimeAsync(TTL_MS / 3);
  expect(leases.renewals).toBe(1);
  run.finish();
  await run.outcome;
  expect(leases.released).toBe(1);
  // The store answers the renewal now: the lease it renewed is gone, released.
  answer(false);
  await jest.advanceTimersByTimeAsync(0);
  expect(lines).toEqual([]);
});
