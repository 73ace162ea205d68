/**
 * A fixed-size pool of PKCS#11 sessions. A session runs one operation at a time (PKCS#11 keeps one
 * active operation per session), so each caller leases a session for the whole of its operation.
 *
 * The pool knows nothing of PKCS#11 itself: it opens and closes sessions through the functions it is
 * given. After a module re-initialisation every session is void; `reset()` starts a new generation,
 * and leases of older generations are dropped when they come back.
 *
 * Nothing waits without bound: callers beyond `maxWaiters` are refused at once, a wait for a session
 * ends at its deadline, and a session whose call hung can be abandoned (see {@link abandon}).
 */

export interface Lease<S> {
  readonly session: S;
  readonly generation: number;
}

export interface SessionPoolOptions<S> {
  readonly size: number;
  /** Callers that may wait for a session at once; the next one is refused ({@link PoolBusyError}). */
  readonly maxWaiters: number;
  /** Opens (and logs in, if needed) a new session. May throw; the error reaches the acquirer. */
  readonly open: () => S;
  /** Closes a session; errors are ignored, the session is being discarded anyway. */
  readonly close: (session: S) => void;
  /**
   * Whether an error of `open` says the token allows no more sessions (PKCS#11 CKR_SESSION_COUNT).
   * Then, if the pool has sessions already, it shrinks to the number it has (calling `onLimit`) and
   * the caller waits for one of them, instead of failing because the pool was configured larger
   * than the token allows.
   */
  readonly isLimit?: (error: unknown) => boolean;
  readonly onLimit?: (size: number) => void;
}

/** The pool's numbers, for health checks. */
export interface PoolState {
  readonly size: number;
  /** Sessions leased out to a caller. */
  readonly busy: number;
  /** Open sessions waiting for a caller. */
  readonly free: number;
  /** Sessions whose call hung: given up on, closed once the call comes back. */
  readonly abandoned: number;
  /** Callers waiting for a session. */
  readonly waiters: number;
}

export class PoolClosedError extends Error {
  constructor() {
    super('the HSM session pool is closed');
    this.name = 'PoolClosedError';
  }
}

/** No session could be had: every waiting place is taken, or the caller's deadline passed. */
export class PoolBusyError extends Error {
  constructor(readonly reason: 'queue full' | 'deadline') {
    super(reason === 'queue full' ? 'too many callers are waiting for an HSM session' : 'no HSM session became free before the deadline');
    this.name = 'PoolBusyError';
  }
}

interface Waiter<S> {
  resolve: (lease: Lease<S>) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout | undefined;
}

export class SessionPool<S> {
  private readonly idle: Lease<S>[] = [];
  private readonly waiters: Waiter<S>[] = [];
  /** Open sessions of the current generation, idle or leased, abandoned ones not included. */
  private live = 0;
  private readonly leased = new Set<Lease<S>>();
  /** Abandoned sessions of the current generation whose call has not come back yet. */
  private abandonedLive = 0;
  private generation = 0;
  private closed = false;
  /** Between reset() and resume(): the module is being re-initialised, so no session may be opened. */
  private paused = false;
  private drainedWaiters: Array<() => void> = [];
  /** The configured size, or less once the token refused more sessions. */
  private size: number;

  constructor(private readonly options: SessionPoolOptions<S>) {
    this.size = options.size;
  }

  get currentGeneration(): number {
    return this.generation;
  }

  /** Sessions currently leased out. */
  get busy(): number {
    return this.leased.size;
  }

  state(): PoolState {
    const { size } = this;
    return { size, busy: this.leased.size, free: this.idle.length, abandoned: this.abandonedLive, waiters: this.waiters.length };
  }

  /**
   * An idle session now, or undefined (then {@link acquire} opens one or waits). The common case
   * of a request, taken without a promise: every await on the HSM path costs the request time.
   */
  tryAcquire(): Lease<S> | undefined {
    if (this.closed) return undefined;
    const lease = this.idle.pop();
    return lease && this.lend(lease);
  }

  /** A session, within `timeoutMs` (no bound when undefined); rejects with {@link PoolBusyError} beyond the limits. */
  acquire(timeoutMs?: number): Promise<Lease<S>> {
    if (this.closed) return Promise.reject(new PoolClosedError());
    const lease = this.idle.pop();
    if (lease) return Promise.resolve(this.lend(lease));
    if (this.canOpen()) {
      try {
        return Promise.resolve(this.lend(this.openLease()));
      } catch (error) {
        if (!this.shrinkAt(error)) return Promise.reject(error);
      }
    }
    if (this.waiters.length >= this.options.maxWaiters) return Promise.reject(new PoolBusyError('queue full'));
    if (timeoutMs !== undefined && timeoutMs <= 0) return Promise.reject(new PoolBusyError('deadline'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter<S> = { resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(new PoolBusyError('deadline'));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  /** Returns a healthy session. */
  release(lease: Lease<S>): void {
    if (!this.leased.delete(lease)) return this.closeQuietly(lease); // forgotten by a drain that timed out
    if (lease.generation !== this.generation || this.closed) {
      this.closeQuietly(lease);
      this.afterReturn();
      return;
    }
    const waiter = this.nextWaiter();
    if (waiter) waiter.resolve(this.lend(lease));
    else this.idle.push(lease);
    this.afterReturn();
  }

  /** Drops a session that failed; a waiting caller gets a freshly opened one. */
  discard(lease: Lease<S>): void {
    if (!this.leased.delete(lease)) return this.closeQuietly(lease);
    this.closeQuietly(lease);
    if (lease.generation === this.generation) this.live--;
    this.serveWaiters();
    this.afterReturn();
  }

  /**
   * Gives up on a session whose call hung: it is never lent again, a replacement may be opened (up
   * to twice the pool's size counting abandoned sessions, so that an HSM that hangs every call
   * cannot make the pool open sessions without end), and the session is closed when `settled` does,
   * because closing a session another thread is using is undefined behaviour.
   */
  abandon(lease: Lease<S>, settled: Promise<unknown>): void {
    if (!this.leased.delete(lease)) return;
    const current = lease.generation === this.generation;
    if (current) {
      this.live--;
      this.abandonedLive++;
    }
    const back = (): void => {
      if (current && lease.generation === this.generation) this.abandonedLive--;
      this.closeQuietly(lease);
      this.serveWaiters();
    };
    settled.then(back, back);
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
    this.abandonedLive = 0;
    this.paused = true;
  }

  /** The module is initialised again: open sessions for the callers that waited. */
  resume(): void {
    this.paused = false;
    this.serveWaiters();
  }

  /**
   * Resolves true once no session is leased out, or false after `timeoutMs` (no bound when
   * undefined): then the sessions still out are forgotten, as if they had come back.
   */
  drained(timeoutMs?: number): Promise<boolean> {
    if (this.leased.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.drainedWaiters.push(done);
      if (timeoutMs === undefined) return;
      timer = setTimeout(() => {
        this.drainedWaiters = this.drainedWaiters.filter((waiter) => waiter !== done);
        this.leased.clear();
        resolve(false);
        this.afterReturn();
      }, timeoutMs);
    });
  }

  /** Closes idle sessions and refuses new leases; leased sessions close when they come back. */
  close(): void {
    this.closed = true;
    for (const lease of this.idle.splice(0)) this.closeQuietly(lease);
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(new PoolClosedError());
    }
  }

  private canOpen(): boolean {
    return !this.paused && !this.closed && this.live < this.size && this.live + this.abandonedLive < 2 * this.size;
  }

  private lend(lease: Lease<S>): Lease<S> {
    this.leased.add(lease);
    return lease;
  }

  private openLease(): Lease<S> {
    const session = this.options.open();
    this.live++;
    return { session, generation: this.generation };
  }

  private nextWaiter(): Waiter<S> | undefined {
    const waiter = this.waiters.shift();
    if (waiter) clearTimeout(waiter.timer);
    return waiter;
  }

  private serveWaiters(): void {
    while (this.waiters.length > 0 && this.canOpen()) {
      let lease: Lease<S>;
      try {
        lease = this.openLease();
      } catch (error) {
        if (this.shrinkAt(error)) return; // the waiters wait for a session to come back
        this.nextWaiter()!.reject(error);
        continue;
      }
      this.nextWaiter()!.resolve(this.lend(lease));
    }
  }

  /** After `open` failed: whether the token's session limit was reached with sessions in hand (then the pool is that size from now on). */
  private shrinkAt(error: unknown): boolean {
    if (this.live === 0 || !this.options.isLimit?.(error)) return false;
    this.size = this.live;
    this.options.onLimit?.(this.size);
    return true;
  }

  private closeQuietly(lease: Lease<S>): void {
    if (lease.generation !== this.generation) return; // void already: the module was finalised
    try {
      this.options.close(lease.session);
    } catch {
      // The session is being dropped because it is broken; failing to close it changes nothing.
    }
  }

  private afterReturn(): void {
    if (this.leased.size === 0) for (const resolve of this.drainedWaiters.splice(0)) resolve();
  }
}
