import { RereadSchedule } from '../../src/hsm/reread-schedule';

/** A refresh that records when it starts and finishes only when the test lets it. */
function controlledRefresh() {
  const starts: number[] = [];
  const finishers: Array<() => void> = [];
  const refresh = (): Promise<void> => {
    starts.push(performance.now());
    return new Promise<void>((resolve) => finishers.push(resolve));
  };
  const finishRunning = async (): Promise<void> => {
    while (finishers.length === 0) await new Promise((resolve) => setImmediate(resolve));
    finishers.shift()!();
  };
  return { starts, refresh, finishRunning };
}

describe('re-reads of the token after a miss', () => {
  it('serves every caller waiting when a re-read starts with that one run', async () => {
    const { starts, refresh, finishRunning } = controlledRefresh();
    const schedule = new RereadSchedule(refresh, 0);
    const waiting = Promise.all([schedule.after(), schedule.after(), schedule.after()]);
    await finishRunning();
    await waiting;
    expect(starts).toHaveLength(1);
  });

  it('gives a caller who asks during a run the next run, which starts after that one finished', async () => {
    const { starts, refresh, finishRunning } = controlledRefresh();
    const schedule = new RereadSchedule(refresh, 0);
    const first = schedule.after();
    while (starts.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // The first run began before this caller asked: it cannot have seen what the caller missed.
    let secondDone = false;
    const second = schedule.after().then(() => (secondDone = true));
    await finishRunning();
    await first;
    expect(secondDone).toBe(false);
    await finishRunning();
    await second;
    expect(starts).toHaveLength(2);
  });

  it('starts runs no closer together than the interval, however many misses ask', async () => {
    // A clock of the test's own: time moves only when the schedule waits, and a wait of more than
    // a millisecond ends half a millisecond early, as a timer may.
    let now = 1000;
    const clock = {
      now: () => now,
      sleep: async (ms: number) => {
        now += ms > 1 ? ms - 0.5 : ms;
      },
    };
    const starts: number[] = [];
    const schedule = new RereadSchedule(async () => {
      starts.push(now);
    }, 40, clock);
    for (let i = 0; i < 3; i++) await Promise.all([schedule.after(), schedule.after()]);
    expect(starts).toHaveLength(3);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(40);
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(40);
  });
});
