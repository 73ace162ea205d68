/**
 * The one poll-until of the tests: for what arrives later than the response a test has seen (log
 * lines through a pipe, a process's exit, a metric that settles, a call that starts hanging in the
 * shim). It polls state, never sleeps a fixed time, and always has a limit: a condition that never
 * comes true fails the test with what was awaited and the last value seen, instead of running
 * into Jest's timeout with no word of what it was waiting for.
 */

/** The limit when a test names none: well inside Jest's 30 s per test (jest.config.js). */
export const EVENTUALLY_LIMIT_MS = 10_000;
const EVERY_MS = 20;

export interface EventuallyOptions<T> {
  /** Whether a value read is the one awaited (default: any truthy value). */
  readonly until?: (value: T) => boolean;
  /** How long to poll before failing (default {@link EVENTUALLY_LIMIT_MS}). */
  readonly limitMs?: number;
  /** How long to wait between reads (default 20 ms). */
  readonly everyMs?: number;
}

/** What awaited never came within its limit. */
export class NeverHappened extends Error {
  override readonly name = 'NeverHappened';
}

/**
 * Reads `read` until `until` holds of its value (or, without `until`, the value is truthy) and
 * returns that value; throws {@link NeverHappened} naming `what` once `limitMs` has passed. A read
 * that throws fails at once (it is a broken test, not a condition still to come).
 */
export async function eventually<T>(what: string, read: () => T | Promise<T>, options: EventuallyOptions<T> = {}): Promise<T> {
  const { until = Boolean, limitMs = EVENTUALLY_LIMIT_MS, everyMs = EVERY_MS } = options;
  if (!(Number.isFinite(limitMs) && limitMs > 0)) throw new RangeError(`eventually(${what}): the limit must be a positive number of ms, got ${limitMs}`);
  const giveUpAt = Date.now() + limitMs;
  for (;;) {
    const value = await read();
    if (until(value)) return value;
    if (Date.now() >= giveUpAt) throw new NeverHappened(`waited ${limitMs} ms for ${what}; last seen: ${describe(value)}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

function describe(value: unknown): string {
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 500 ? `${text.slice(0, 500)}…` : text;
}
