import { setTimeout as sleep } from 'node:timers/promises';

/** The schedule's clock: its time in milliseconds, and a wait (a test gives it a clock of its own). */
export interface ScheduleClock {
  now(): number;
  sleep(ms: number): Promise<unknown>;
}

const REAL_CLOCK: ScheduleClock = { now: () => performance.now(), sleep: (ms) => sleep(ms) };

/**
 * Schedules a costly refresh (re-reading the token) for callers that need one which began after
 * they asked: every caller waiting at the moment a run starts is served by that run, later callers
 * by the next one, and runs start at most once per `minIntervalMs`, so that requests for a key
 * whose material really is gone cannot make the process re-read the token without pause.
 */
export class RereadSchedule {
  private lastStart = Number.NEGATIVE_INFINITY;
  private running: Promise<void> = Promise.resolve();
  private queued: Promise<void> | undefined;

  constructor(
    /** The refresh itself; it must not reject (it reports its own failures). */
    private readonly refresh: () => Promise<void>,
    private readonly minIntervalMs: number,
    private readonly clock: ScheduleClock = REAL_CLOCK,
  ) {}

  /** Resolves once a refresh that started after this call has finished. */
  after(): Promise<void> {
    this.queued ??= this.running.then(async () => {
      // A timer may fire a little early: wait until the clock says the interval has passed.
      for (let wait = this.lastStart + this.minIntervalMs - this.clock.now(); wait > 0; wait = this.lastStart + this.minIntervalMs - this.clock.now()) {
        await this.clock.sleep(wait);
      }
      // From here on, callers need a run that starts later than this one.
      this.queued = undefined;
      this.lastStart = this.clock.now();
      this.running = this.refresh();
      await this.running;
    });
    return this.queued;
  }
}
