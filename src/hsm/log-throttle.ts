/**
 * Lets a message through at most once per interval per key, and says how many were held back in
 * between: a failing HSM fails every request, and a log line per request would flood the log.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; held: number }>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Undefined while `key` is held back; otherwise the number of messages held back since the last one. */
  pass(key: string): number | undefined {
    const now = this.now();
    const entry = this.last.get(key);
    if (entry && now - entry.at < this.intervalMs) {
      entry.held++;
      return undefined;
    }
    this.last.set(key, { at: now, held: 0 });
    return entry?.held ?? 0;
  }
}
