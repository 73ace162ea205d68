/**
 * A fixed-size pool of PKCS#11 sessions. A session runs one operation at a time (PKCS#11 keeps one
 * active operation per session), so each caller leases a session for the whole of its operation.
 *
 * The pool knows nothing of PKCS#11 itself: it opens and closes sessions through the functions it is
 * given. After a module re-initialisation every session is void; `reset()` starts a new generation,
 * and leases of older generations are dropped when they come back.
 */

export interface Lease {
  readonly session: Buffer;
  readonly generation: number;
}

export interface SessionPoolOptions {
  readonly size: number;
  /** Opens (and logs in, if needed) a new session. May throw; the error reaches the acquirer. */
  readonly open: () => Buffer;
  /** Closes a session; errors are ignored, the session is being discarded anyway. */
  readonly close: (session: Buffer) => void;
}

export class PoolClosedError extends Error {
  constructor() {
    super('the HSM session pool is closed');
    this.name = 'PoolClosedError';
  }
}

export class SessionPool {
  private readonly idle: Lease[] = [];
  private readonly waiters: Array<{ resolve: (lease: Lease) => void; reject: (error: unknown) => void }> = [];
  private live = 0;
  private leased = 0;
  private generation = 0;
  private closed = false;
  /** Between reset() and resume(): the module is being re-initialised, so no session may be opened. */
  private paused = false;
  private drainedWaiters: Array<() => void> = [];

  constructor(private readonly options: SessionPoolOptions) {}

  get currentGeneration(): number {
    return this.generation;
  }

  /** Sessions currently leased out. */
  get busy(): number {
    return this.leased;
  }

  acquire(): Promise<Lease> {
    if (this.closed) return Promise.reject(new PoolClosedError());
    const lease = this.idle.pop();
    if (lease) return Promise.resolve(this.lend(lease));
    if (this.live < this.options.size && !this.paused) {
      try {
        return Promise.resolve(this.lend(this.openLease()));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /** Returns a healthy session. */
  release(lease: Lease): void {
    this.leased--;
    if (lease.generation !== this.generation || this.closed) {
      this.closeQuietly(lease);
      this.afterReturn();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(this.lend(lease));
    else this.idle.push(lease);
    this.afterReturn();
  }

  /** Drops a session that failed; a waiting caller gets a freshly opened one. */
  discard(lease: Lease): void {
    this.leased--;
    this.closeQuietly(lease);
    if (lease.generation === this.generation) this.live--;
    this.serveWaiters();
    this.afterReturn();
  }

  /**
   * Forgets every session, because the module is about to be re-initialised and their handles will
   * mean nothing; callers wait until resume().
   */
  reset(): void {
    this.generation++;
    this.idle.length = 0;
    this.live = 0;
    this.paused = true;
  }

  /** The module is initialised again: open sessions for the callers that waited. */
  resume(): void {
    this.paused = false;
    this.serveWaiters();
  }

  /** Resolves once no session is leased out. */
  drained(): Promise<void> {
    if (this.leased === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainedWaiters.push(resolve));
  }

  /** Closes idle sessions and refuses new leases; leased sessions close when they come back. */
  close(): void {
    this.closed = true;
    for (const lease of this.idle.splice(0)) this.closeQuietly(lease);
    for (const waiter of this.waiters.splice(0)) waiter.reject(new PoolClosedError());
  }

  private lend(lease: Lease): Lease {
    this.leased++;
    return lease;
  }

  private openLease(): Lease {
    const session = this.options.open();
    this.live++;
    return { session, generation: this.generation };
  }

  private serveWaiters(): void {
    while (this.waiters.length > 0 && this.live < this.options.size && !this.closed && !this.paused) {
      const waiter = this.waiters.shift()!;
      try {
        waiter.resolve(this.lend(this.openLease()));
      } catch (error) {
        waiter.reject(error);
      }
    }
  }

  private closeQuietly(lease: Lease): void {
    if (lease.generation !== this.generation) return; // void already: the module was finalised
    try {
      this.options.close(lease.session);
    } catch {
      // The session is being dropped because it is broken; failing to close it changes nothing.
    }
  }

  private afterReturn(): void {
    if (this.leased === 0) for (const resolve of this.drainedWaiters.splice(0)) resolve();
  }
}
