import { eventually, NeverHappened } from '../helpers/eventually';

describe('eventually', () => {
  it('returns the first value that satisfies the condition, reading again until then', async () => {
    let reads = 0;
    await expect(eventually('the third read', () => ++reads, { until: (n) => n === 3, everyMs: 1 })).resolves.toBe(3);
    expect(reads).toBe(3);
  });

  it('takes any truthy value when no condition is given', async () => {
    const values = [undefined, '', 'found'];
    await expect(eventually('a value', () => values.shift(), { everyMs: 1 })).resolves.toBe('found');
  });

  it('fails at its limit naming what it awaited and the last value it saw', async () => {
    const failure = eventually('the moon to turn blue', () => ({ colour: 'grey' }), { until: (moon) => moon.colour === 'blue', limitMs: 30, everyMs: 5 });
    await expect(failure).rejects.toThrow(NeverHappened);
    await expect(failure).rejects.toThrow('waited 30 ms for the moon to turn blue; last seen: {"colour":"grey"}');
  });

  it('always has a limit', async () => {
    for (const limitMs of [Infinity, 0, -1, Number.NaN]) {
      await expect(eventually('anything', () => false, { limitMs })).rejects.toThrow(RangeError);
    }
  });

  it('passes on a read that throws at once, as a broken test and not a condition still to come', async () => {
    let reads = 0;
    const read = (): boolean => {
      reads++;
      throw new Error('no such file');
    };
    await expect(eventually('a file', read)).rejects.toThrow('no such file');
    expect(reads).toBe(1);
  });
});
