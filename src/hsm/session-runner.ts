import type * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { Logger } from 'pino';
import { KmsError } from '../errors';
import { ckrConstant, ckrName, ckrOf, classifyCkr, type CkrClass } from './ckr';
import { beforeDeadline, DeadlinePassed } from './deadline';
import type { HsmState } from './hsm';
import type { HsmCallName, HsmObserver } from './hsm-observer';
import { LogThrottle } from './log-throttle';
import { PoolBusyError, PoolClosedError, SessionPool } from './session-pool';
import type { TokenConnection } from './token-connection';

/** A re-initialisation that failed is tried again after this, doubling on each failure up to the cap. */
const REINIT_BACKOFF_MS = 1000;
const REINIT_BACKOFF_CAP_MS = 30_000;
/** Repeated warnings (an HSM that hangs or is overloaded fails every request) are logged at most this often. */
const WARN_INTERVAL_MS = 10_000;

export interface SessionRunnerOptions {
  /** Sessions to keep (fewer when the token allows fewer). */
  readonly sessions: number;
  /** Milliseconds an operation may take: its wait for a recovery and for a session, and its calls. */
  readonly callTimeoutMs: number;
  /** Callers that may wait for a session; the next one gets KMS.0104 at once. */
  readonly maxWaiters: number;
  readonly logger: Logger;
  /**
   * After every re-initialisation, on a pooled session that stays open while it runs (SoftHSM voids
   * object handles once a token's last session closes): what the module's users must redo, such as
   * reading the token's keys again. Callers wait for it.
   */
  readonly afterReinitialise: (session: graphene.Session) => void;
  /** Before a re-initialisation: what depends on the old module, such as cached object handles, is dropped. */
  readonly beforeReinitialise: () => void;
  /** Told of every attempt's duration and outcome (the metrics); none by default. */
  readonly observer?: HsmObserver;
}

/** Why the module is initialised again: a module failure, or a re-read of the token's contents. */
export type ReinitialisationReason = 'recovery' | 'reread';

/**
 * Runs operations on pooled, logged-in sessions of one token, and keeps them running: every
 * operation has a deadline (its wait for a session and for a recovery included), the queue of callers
 * is bounded, a session whose call hung is abandoned, a lost session is replaced and the operation
 * retried once, a module failure re-initialises the module (once per failure, shared by every caller)
 * and a failed re-initialisation backs off.
 *
 * Contract of {@link run}: resolves with the operation's result, or rejects with
 * - what the operation threw itself when it is not a PKCS#11 error (a KmsError, a typed signal),
 *   and a PKCS#11 error classified `handle` (a stale object handle: the caller looks the object up
 *   again), both on a session that stays healthy;
 * - KMS.0104 for a deadline, a full queue, a closed runner, a back-off, a busy HSM or a module
 *   failure that one recovery did not cure;
 * - KMS.0103 for any other PKCS#11 error.
 */
export class SessionRunner {
  private readonly pool: SessionPool<graphene.Session>;
  private recovering: Promise<void> | undefined;
  private closed = false;
  private recoveries = 0;
  private rereads = 0;
  private lastError: HsmState['lastError'];
  /** Set while the last re-initialisation failed: until `until`, requests get 503 at once. */
  private backoff: { until: number; delayMs: number } | undefined;
  private readonly warnings = new LogThrottle(WARN_INTERVAL_MS);

  constructor(
    private readonly connection: TokenConnection,
    private readonly options: SessionRunnerOptions,
  ) {
    const limit = connection.maxSessions();
    const size = limit === undefined ? options.sessions : Math.min(options.sessions, limit);
    if (size < options.sessions) {
      options.logger.warn({ configured: options.sessions, tokenAllows: limit }, 'the token allows fewer sessions than configured: using what it allows');
    }
    this.pool = new SessionPool({
      size,
      maxWaiters: options.maxWaiters,
      open: () => connection.openSession(),
      close: (session) => connection.closeSession(session),
      isLimit: (error) => ckrOf(error) === pkcs11.CKR_SESSION_COUNT,
      onLimit: (sessions) => options.logger.warn({ sessions }, 'the token refused another session (CKR_SESSION_COUNT): keeping the sessions it gave'),
    });
  }

  /** Runs `operation` on a session of its own, after which the session goes back to the pool (start-up work). */
  async once<T>(operation: (session: graphene.Session) => T | Promise<T>): Promise<T> {
    const lease = await this.pool.acquire(this.options.callTimeoutMs);
    try {
      return await operation(lease.session);
    } finally {
      this.pool.release(lease);
    }
  }

  /**
   * Runs `operation` on a leased session, within the call deadline (which every attempt shares;
   * `timeoutMs` when the operation names its own, as a key generation does). A
   * lost session is replaced and the operation retried once; a module-level failure re-initialises
   * the module first. See the class's contract for what it throws.
   *
   * An operation that answers synchronously (an in-process module's encryption: the profile's `sync`
   * calls) is not raced against the deadline: its answer is there before any timer could fire, and
   * arming one per call cost a request more than the check is worth. Only a promise is raced. With no
   * recovery under way and a session idle, nothing is awaited before the operation runs.
   */
  async run<T>(what: HsmCallName, operation: (session: graphene.Session) => T | Promise<T>, timeoutMs = this.options.callTimeoutMs): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    // At most one new session and one module re-initialisation per operation: a module that lost
    // its state may first say so for the session (NSS: CKR_SESSION_HANDLE_INVALID), then for the slot.
    let sessionRetried = false;
    let recovered = false;
    for (;;) {
      const recovery = this.moduleReady(what, deadline);
      if (recovery) await recovery;
      let lease = this.pool.tryAcquire();
      if (!lease) {
        try {
          lease = await this.pool.acquire(deadline - performance.now());
        } catch (error) {
          if (error instanceof PoolClosedError) throw new KmsError('KMS.0104', { cause: error });
          if (error instanceof PoolBusyError) throw this.unavailable(what, error.message, error);
          const kind = classifyCkr(error);
          if (!recovered && kind === 'module') {
            recovered = true;
            await this.recover(this.pool.currentGeneration, what, error);
            continue;
          }
          throw this.failure(what, kind, error);
        }
      }
      const started = performance.now();
      let call: T | Promise<T> | undefined;
      try {
        call = operation(lease.session);
        const result = call instanceof Promise ? await beforeDeadline(call, deadline) : call;
        this.options.observer?.callEnded(what, (performance.now() - started) / 1000, undefined);
        this.pool.release(lease);
        return result;
      } catch (error) {
        if (error instanceof DeadlinePassed) {
          this.options.observer?.callTimedOut(what);
          // The call goes on in its libuv thread; its session must not be used or closed until then.
          this.pool.abandon(lease, call instanceof Promise ? call : Promise.resolve());
          throw this.unavailable(what, `no answer within ${timeoutMs} ms; the session is abandoned`, error);
        }
        // Errors that did not come from the module (a KmsError, a missing key) pass through as they are.
        const code = ckrOf(error);
        this.options.observer?.callEnded(what, (performance.now() - started) / 1000, code === undefined ? undefined : ckrConstant(code));
        const kind = code === undefined ? undefined : classifyCkr(error);
        if (kind === undefined || kind === 'handle') {
          // The failed call ended the operation (PKCS#11 11.8/11.9): the session is healthy.
          this.pool.release(lease);
          throw error;
        }
        this.pool.discard(lease);
        if (!sessionRetried && !recovered && kind === 'session') {
          sessionRetried = true;
          this.options.logger.warn({ operation: what, cause: ckrName(error) }, 'HSM session lost; retrying on a new session');
          continue;
        }
        if (!recovered && kind === 'module') {
          recovered = true;
          await this.recover(lease.generation, what, error);
          continue;
        }
        throw this.failure(what, kind, error);
      }
    }
  }

  /**
   * Finalises and initialises the module again, then lets its users redo their part (see the
   * options). Concurrent callers share one run; it never rejects. A run that fails starts a back-off
   * (doubling, capped), during which requests get 503 at once and no other run starts; the first
   * request after it tries again. No lease may be held by the caller: it waits for every session.
   */
  reinitialise(reason: ReinitialisationReason): Promise<void> {
    if (this.closed || this.inBackoff()) return Promise.resolve();
    this.recovering ??= (async () => {
      if (reason === 'recovery') this.recoveries++;
      else this.rereads++;
      this.pool.reset();
      // Finalising while another thread is inside the module is undefined behaviour: wait for them,
      // but not for a call that hung. Its session is forgotten, and the module finalised under it:
      // the lesser harm, since otherwise one hung call keeps every request waiting.
      if (!(await this.pool.drained(this.options.callTimeoutMs))) {
        this.options.logger.warn({ waitedMs: this.options.callTimeoutMs }, 'HSM calls still running at re-initialisation: their sessions are abandoned');
      }
      this.options.beforeReinitialise();
      let failed: { error: unknown; step: string } | undefined;
      try {
        await this.connection.reinitialise();
      } catch (error) {
        failed = { error, step: 'the module cannot be initialised' };
      }
      // Only now may sessions be opened again: before, they would belong to the old module.
      this.pool.resume();
      if (!failed) {
        try {
          await this.once((session) => this.options.afterReinitialise(session));
        } catch (error) {
          failed = { error, step: 'the token cannot be read' };
        }
      }
      if (!failed) {
        if (this.backoff) this.options.logger.info('HSM re-initialised after failed attempts');
        this.backoff = undefined;
        return;
      }
      const delayMs = Math.min(REINIT_BACKOFF_CAP_MS, this.backoff ? this.backoff.delayMs * 2 : REINIT_BACKOFF_MS);
      this.backoff = { until: performance.now() + delayMs, delayMs };
      this.noteError(ckrName(failed.error));
      this.options.logger.error({ cause: ckrName(failed.error), retryInMs: delayMs }, `HSM re-initialisation failed: ${failed.step}; backing off`);
    })().finally(() => {
      this.recovering = undefined;
    });
    return this.recovering;
  }

  state(): HsmState {
    const { size, busy, free, abandoned, waiters } = this.pool.state();
    return {
      sessions: { size, busy, free, abandoned },
      waiters,
      lastError: this.lastError,
      recoveries: this.recoveries,
      rereads: this.rereads,
      backingOff: this.inBackoff(),
    };
  }

  /** Refuses new operations and waits (within the call deadline: a hung call is not waited for) for those running. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.close();
    await this.pool.drained(this.options.callTimeoutMs);
  }

  /**
   * Undefined when the module is ready (the common case, without a promise); a wait, within the
   * deadline, for a recovery under way. Refuses at once while a failed re-initialisation backs off,
   * and starts the next attempt once the back-off is over.
   */
  private moduleReady(what: string, deadline: number): Promise<void> | undefined {
    if (this.closed) throw new KmsError('KMS.0104', { cause: new PoolClosedError() });
    if (this.backoff && !this.inBackoff()) void this.reinitialise('recovery');
    if (this.recovering) return this.afterRecovery(this.recovering, what, deadline);
    // Logged once, when the re-initialisation failed: nothing per request here.
    if (this.inBackoff()) throw new KmsError('KMS.0104', { cause: new Error('the HSM module failed to re-initialise; backing off') });
    return undefined;
  }

  private async afterRecovery(recovering: Promise<void>, what: string, deadline: number): Promise<void> {
    try {
      await beforeDeadline(recovering, deadline);
    } catch (error) {
      throw this.unavailable(what, 'the HSM module did not recover before the deadline', error);
    }
    if (this.inBackoff()) throw new KmsError('KMS.0104', { cause: new Error('the HSM module failed to re-initialise; backing off') });
  }

  private inBackoff(): boolean {
    return this.backoff !== undefined && performance.now() < this.backoff.until;
  }

  /** Re-initialises the module once per failed generation; concurrent callers share the work. */
  private recover(failedGeneration: number, what: string, cause: unknown): Promise<void> {
    if (this.recovering) return this.recovering;
    if (failedGeneration !== this.pool.currentGeneration || this.inBackoff()) return Promise.resolve();
    this.noteError(ckrName(cause));
    this.options.logger.error({ operation: what, cause: ckrName(cause) }, 'HSM module failure; re-initialising the module');
    return this.reinitialise('recovery');
  }

  /** A 503 for a limit reached (deadline, queue): remembered for the health checks, logged at most every few seconds. */
  private unavailable(what: string, reason: string, cause: unknown): KmsError {
    this.noteError(reason);
    const held = this.warnings.pass(reason);
    if (held !== undefined) this.options.logger.warn({ operation: what, reason, heldBack: held }, 'HSM unavailable: answering 503');
    return new KmsError('KMS.0104', { cause });
  }

  private failure(what: string, kind: CkrClass, cause: unknown): KmsError {
    this.noteError(ckrName(cause));
    // An HSM out of sessions or memory fails every request alike: log it once in a while, not each time.
    const held = kind === 'busy' ? this.warnings.pass(`busy ${ckrName(cause)}`) : 0;
    if (held !== undefined) this.options.logger.error({ operation: what, cause: ckrName(cause), heldBack: held || undefined }, 'HSM operation failed');
    if (kind === 'internal' || kind === 'pin') return new KmsError('KMS.0103', { cause });
    return new KmsError('KMS.0104', { cause });
  }

  private noteError(cause: string): void {
    this.lastError = { cause, at: new Date().toISOString() };
  }
}
