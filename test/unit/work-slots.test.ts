import { WorkSlots } from '../../src/kms/work-slots';

/** A task that runs until the test ends it. */
function task(started: string[], name: string): { run: () => Promise<string>; end: () => void } {
  let end = (): void => undefined;
  const done = new Promise<void>((resolve) => (end = resolve));
  return {
    run: async () => {
      started.push(name);
      await done;
      return name;
    },
    end: () => end(),
  };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('WorkSlots', () => {
  it('runs at most its slots at once; the others wait and start in arrival order as slots free', async () => {
    const slots = new WorkSlots(2);
    const started: string[] = [];
    const tasks = ['a', 'b', 'c', 'd'].map((name) => task(started, name));
    const results = tasks.map((t) => slots.run(t.run));
    await settle();
    expect(started).toEqual(['a', 'b']);
    expect(slots.state).toEqual({ running: 2, waiting: 2 });
    tasks[1]!.end();
    await settle();
    expect(started).toEqual(['a', 'b', 'c']);
    expect(slots.state).toEqual({ running: 2, waiting: 1 });
    tasks[0]!.end();
    tasks[2]!.end();
    tasks[3]!.end();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c', 'd']);
    expect(slots.state).toEqual({ running: 0, waiting: 0 });
  });

  it('frees the slot of a task that fails', async () => {
    const slots = new WorkSlots(1);
    await expect(slots.run(() => Promise.reject(new Error('failed')))).rejects.toThrow('failed');
    expect(slots.state).toEqual({ running: 0, waiting: 0 });
    expect(await slots.run(() => Promise.resolve('next'))).toBe('next');
  });

  it('refuses fewer than one slot', () => {
    expect(() => new WorkSlots(0)).toThrow(RangeError);
  });
});
