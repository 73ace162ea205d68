/**
 * At most `slots` tasks at once, the others waiting in arrival order: for CPU work that runs on
 * libuv's thread pool (key pair generation), which the service's asynchronous HSM calls and the
 * audit log's writes share (src/main.ts sizes it to the HSM sessions plus four). The waiting line
 * holds one entry per request in flight, so it is as bounded as they are.
 */
export class WorkSlots {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly slots: number) {
    if (!(slots >= 1)) throw new RangeError(`work slots must be at least 1, not ${slots}`);
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.slots) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await task();
    } finally {
      // The slot passes straight to the next in line (running stays the same), or is freed.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Tasks running now, and waiting (for tests and metrics). */
  get state(): { readonly running: number; readonly waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }
}
