import { setTimeout as sleep } from 'node:timers/promises';
import type * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { Logger } from 'pino';
import { KmsError } from '../errors';
import { ckrName, ckrOf, classifyCkr, type CkrClass } from './ckr';
import type { Hsm, HsmState, MaterialRef, SealedData } from './hsm';
import { LogThrottle } from './log-throttle';
import { RandomPool } from './random-pool';
import { HsmStartError } from './start-error';
import type { ProfileName } from './profile-names';
import { profileFor, type Pkcs11Profile } from './profiles';
import { RereadSchedule } from './reread-schedule';
import { PoolBusyError, PoolClosedError, SessionPool, type Lease } from './session-pool';
import type { TokenLock } from './token-lock';
import { finalizeQuietly, initializeOptions, loadModule, tokenSlots } from './token-setup';
import { missingMechanisms } from './mechanisms';
import {
  AES_KEY_GEN,
  ALL_SECRET_KEYS_TEMPLATE,
  findMaterialTemplate,
  gcmMechanism,
  masterKeyTemplate,
  parseObjectLabel,
} from './templates';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const FIND_BATCH = 1000;
/**
 * Looking for the token right after C_Initialize can fail for a moment while another process
 * rewrites the token's file (SoftHSM does not list a token whose file is half-written, or answers
 * CKR_GENERAL_ERROR for it): the module is initialised again and the token looked for again.
 */
const ATTACH_ATTEMPTS = 20;
const ATTACH_RETRY_MS = 100;
/**
 * A key the database knows but the token does not show makes this process re-read the token (by
 * re-initialising the module) before it answers 404; at most once per this interval.
 */
const REREAD_MIN_INTERVAL_MS = 1000;
/** A re-initialisation that failed is tried again after this, doubling on each failure up to the cap. */
const REINIT_BACKOFF_MS = 1000;
const REINIT_BACKOFF_CAP_MS = 30_000;
/** Repeated warnings (an HSM that hangs or is overloaded fails every request) are logged at most this often. */
const WARN_INTERVAL_MS = 10_000;
// Session states of a logged-in user (PKCS#11 CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS); pkcs11js does not name them.
const USER_SESSION_STATES: ReadonlySet<number> = new Set([1, 3]);

export interface Pkcs11HsmOptions {
  readonly modulePath: string;
  /** The module's own initialisation string, passed to C_Initialize (see initializeOptions). */
  readonly initArgs?: string;
  /** The module's profile (see profiles.ts); `auto` (the default) detects it from C_GetInfo. */
  readonly profile?: ProfileName | 'auto';
  readonly tokenLabel: string;
  /** The user PIN. Kept in memory for logins after a re-initialisation; never logged. */
  readonly pin: string;
  readonly sessions: number;
  /**
   * `async` runs C_Encrypt/C_Decrypt on libuv worker threads (a network HSM's millisecond never
   * blocks the event loop); `sync` calls them inline, which costs a fast in-process module half as
   * much CPU (measured with SoftHSM: 28 µs against 56 µs per encryption). Default async.
   */
  readonly cryptoCalls?: 'async' | 'sync';
  /**
   * Milliseconds an operation may take (default 5000), which covers waiting for a module recovery,
   * waiting for a session and the asynchronous calls (C_EncryptAsync, C_DecryptAsync,
   * C_GenerateKeyAsync). A call on a libuv thread cannot be cancelled: at the deadline the caller
   * gets KMS.0104 and the session is abandoned (closed when the call comes back). A synchronous call
   * (the *Init calls, and encryption with `cryptoCalls: 'sync'`) blocks the event loop and cannot be
   * timed out from JavaScript at all. Also bounds a recovery's wait for the calls in flight.
   */
  readonly callTimeoutMs?: number;
  /** Callers that may wait for a session (default 1024); the next one gets KMS.0104 at once. */
  readonly maxWaiters?: number;
  /**
   * Held while this process creates or destroys token objects, shared with the other processes of
   * the service (see {@link TokenLock}); without it, writes are not serialised across processes.
   * Closed with the HSM.
   */
  readonly writeLock?: TokenLock;
  readonly logger: Logger;
}

function materialKey(ref: MaterialRef): string {
  return `${ref.keyId}/${ref.version}`;
}

/**
 * The one implementation of {@link Hsm}, over graphene-pk11 and pkcs11js. It is the only code in
 * the service that makes PKCS#11 calls.
 *
 * Request paths use pkcs11js' asynchronous forms (the call runs on a libuv worker thread), so that a
 * network HSM's round trip does not stall the event loop; set-up and key administration are
 * synchronous. Object handles are cached per key and the token is enumerated once at start-up,
 * because a find gets slower as the token fills.
 */
export class Pkcs11Hsm implements Hsm {
  private readonly module: graphene.Module;
  private readonly lib: pkcs11.PKCS11;
  private slot: graphene.Slot | undefined;
  private readonly pool: SessionPool;
  private readonly handles = new Map<string, Buffer>();
  private readonly randomPool = new RandomPool((length) =>
    this.withSession('generate random', async (lease) => this.lib.C_GenerateRandom(lease.session, Buffer.alloc(length))),
  );
  private readonly syncCrypto: boolean;
  /** How this module differs where the service depends on it. */
  readonly profile: Pkcs11Profile;
  private recovering: Promise<void> | undefined;
  private readonly rereads = new RereadSchedule(() => {
    this.options.logger.warn('key material not found: re-reading the token before answering');
    return this.reinitialise();
  }, REREAD_MIN_INTERVAL_MS);
  private closed = false;
  private readonly callTimeoutMs: number;
  private reinitialisations = 0;
  private lastError: HsmState['lastError'];
  /** Set while the last re-initialisation failed: until `until`, requests get 503 at once. */
  private backoff: { until: number; delayMs: number } | undefined;
  private readonly warnings = new LogThrottle(WARN_INTERVAL_MS);

  private constructor(private readonly options: Pkcs11HsmOptions) {
    this.syncCrypto = options.cryptoCalls === 'sync';
    this.callTimeoutMs = options.callTimeoutMs ?? 5000;
    this.module = loadModule(options.modulePath, options.initArgs);
    this.profile = profileFor(options.profile ?? 'auto', this.module);
    this.lib = this.module.lib;
    this.pool = new SessionPool({
      size: options.sessions,
      maxWaiters: options.maxWaiters ?? 1024,
      open: () => this.openSession(),
      close: (session) => this.lib.C_CloseSession(session),
    });
  }

  /** Loads the module, finds the token, logs in and enumerates the token's keys. */
  static async open(options: Pkcs11HsmOptions): Promise<Pkcs11Hsm> {
    const hsm = new Pkcs11Hsm(options);
    try {
      await hsm.attachToken();
      hsm.checkMechanisms();
      const lease = await hsm.pool.acquire();
      try {
        hsm.enumerate(lease.session);
      } finally {
        hsm.pool.release(lease);
      }
    } catch (error) {
      await hsm.close();
      if (classifyCkr(error) === 'pin') throw new HsmStartError(`PKCS#11 login refused: ${ckrName(error)}`);
      throw error instanceof HsmStartError ? error : new HsmStartError(`PKCS#11 start-up failed: ${ckrName(error)}`, { cause: error });
    }
    options.logger.info(
      { module: options.modulePath, profile: hsm.profile.name, token: options.tokenLabel, sessions: options.sessions, keys: hsm.handles.size },
      'HSM ready',
    );
    return hsm;
  }

  listKeys(): MaterialRef[] {
    return [...this.handles.keys()].map((key) => {
      const [keyId, version] = key.split('/');
      return { keyId: keyId!, version: Number(version) };
    });
  }

  async generateKey(ref: MaterialRef): Promise<void> {
    await this.changingToken(() =>
      this.withSession('generate key', async (lease) => {
        // A fresh look first: it brings this process's view of the token up to date before the write
        // (see TokenLock), and a retry after a failure that came once the HSM had made the key finds
        // that key instead of making a second one.
        const existing = this.find(lease.session, ref);
        const handle = existing ?? (await this.lib.C_GenerateKeyAsync(lease.session, AES_KEY_GEN, masterKeyTemplate(ref)));
        // Cached before the lease goes back, so a module re-initialisation (which waits for every
        // lease) cannot run in between and leave a handle of the old module in the cache.
        this.handles.set(materialKey(ref), handle);
      }),
    );
  }

  /**
   * Under the token lock, after a fresh look (the find itself): the material of a key of this data
   * directory is only ever made under the same lock, so what this look does not find is not there,
   * and no re-read of the token is needed (it would cost every interrupted creation a second).
   */
  async destroyKey(ref: MaterialRef): Promise<boolean> {
    return this.changingToken(() =>
      this.withSession('destroy key', async (lease) => {
        this.handles.delete(materialKey(ref));
        const found = this.findAll(lease.session, ref);
        for (const handle of found) {
          try {
            this.lib.C_DestroyObject(lease.session, handle);
          } catch (error) {
            // Another process destroyed it between our find and our destroy: it is gone either way.
            if (classifyCkr(error) !== 'handle') throw error;
          }
        }
        return found.length > 0;
      }),
    );
  }

  async hasKey(ref: MaterialRef): Promise<boolean> {
    return this.changingToken(() => this.withSession('find key', async (lease) => this.find(lease.session, ref) !== undefined));
  }

  random(length: number): Promise<Buffer> {
    return this.randomPool.take(length);
  }

  async encrypt(ref: MaterialRef, plaintext: Buffer, aad: Buffer): Promise<SealedData> {
    const iv = await this.randomPool.take(IV_BYTES);
    return this.withKey(ref, 'encrypt', async (lease, key) => {
      this.lib.C_EncryptInit(lease.session, gcmMechanism(iv, aad), key);
      const out = Buffer.alloc(plaintext.length + TAG_BYTES);
      const ciphertext = this.syncCrypto ? this.lib.C_Encrypt(lease.session, plaintext, out) : await this.lib.C_EncryptAsync(lease.session, plaintext, out);
      return { iv, ciphertext };
    });
  }

  async decrypt(ref: MaterialRef, sealed: SealedData, aad: Buffer): Promise<Buffer> {
    if (sealed.iv.length !== IV_BYTES || sealed.ciphertext.length < TAG_BYTES) throw new KmsError('KMS.2201');
    return this.withKey(ref, 'decrypt', async (lease, key) => {
      this.lib.C_DecryptInit(lease.session, gcmMechanism(sealed.iv, aad), key);
      // SoftHSM wants room for the whole input (tag included) before it strips the tag.
      const out = Buffer.alloc(sealed.ciphertext.length);
      try {
        return this.syncCrypto ? this.lib.C_Decrypt(lease.session, sealed.ciphertext, out) : await this.lib.C_DecryptAsync(lease.session, sealed.ciphertext, out);
      } catch (error) {
        // Only C_Decrypt's answer can mean "the tag did not verify", and what it answers then is
        // the module's (its profile says); the failed call ended the operation, the session is fine.
        const code = ckrOf(error);
        if (code !== undefined && this.profile.badTagCodes.has(code)) throw new KmsError('KMS.2201', { cause: error });
        throw error;
      }
    });
  }

  state(): HsmState {
    const { size, busy, free, abandoned, waiters } = this.pool.state();
    return {
      sessions: { size, busy, free, abandoned },
      waiters,
      lastError: this.lastError,
      reinitialisations: this.reinitialisations,
      backingOff: this.inBackoff(),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.close();
    // A call that hung is not waited for past its deadline: the process is going away.
    await this.pool.drained(this.callTimeoutMs);
    finalizeQuietly(this.module);
    this.options.writeLock?.close();
  }

  // ---- sessions, retries and recovery ------------------------------------------------------------

  /**
   * Runs `operation` on a leased session, within the call deadline (which every attempt shares). A
   * lost session is replaced and the operation retried once; a module-level failure re-initialises
   * the module first. What still fails becomes a KmsError.
   */
  private async withSession<T>(what: string, operation: (lease: Lease) => Promise<T>): Promise<T> {
    const deadline = performance.now() + this.callTimeoutMs;
    // At most one new session and one module re-initialisation per operation: a module that lost
    // its state may first say so for the session (NSS: CKR_SESSION_HANDLE_INVALID), then for the slot.
    let sessionRetried = false;
    let recovered = false;
    for (;;) {
      await this.moduleReady(what, deadline);
      let lease: Lease;
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
      const call = operation(lease);
      try {
        const result = await beforeDeadline(call, deadline);
        this.pool.release(lease);
        return result;
      } catch (error) {
        if (error instanceof DeadlinePassed) {
          // The call goes on in its libuv thread; its session must not be used or closed until then.
          this.pool.abandon(lease, call);
          throw this.unavailable(what, `no answer within ${this.callTimeoutMs} ms; the session is abandoned`, error);
        }
        // Errors that did not come from the module (a KmsError, a missing key) pass through as they are.
        const kind = ckrOf(error) === undefined ? undefined : classifyCkr(error);
        if (kind === undefined || kind === 'handle') {
          // The failed call ended the operation (PKCS#11 11.8/11.9): the session is healthy.
          this.pool.release(lease);
        } else {
          this.pool.discard(lease);
        }
        if (kind === undefined || kind === 'handle') throw error;
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
   * Waits, within the deadline, for a recovery under way; refuses at once while a failed
   * re-initialisation backs off, and starts the next attempt once the back-off is over.
   */
  private async moduleReady(what: string, deadline: number): Promise<void> {
    if (this.closed) throw new KmsError('KMS.0104', { cause: new PoolClosedError() });
    if (this.backoff && !this.inBackoff()) void this.reinitialise();
    if (this.recovering) {
      try {
        await beforeDeadline(this.recovering, deadline);
      } catch (error) {
        throw this.unavailable(what, 'the HSM module did not recover before the deadline', error);
      }
    }
    // Logged once, when the re-initialisation failed: nothing per request here.
    if (this.inBackoff()) throw new KmsError('KMS.0104', { cause: new Error('the HSM module failed to re-initialise; backing off') });
  }

  private inBackoff(): boolean {
    return this.backoff !== undefined && performance.now() < this.backoff.until;
  }

  /** A 503 for a limit reached (deadline, queue): remembered for the health checks, logged at most every few seconds. */
  private unavailable(what: string, reason: string, cause: unknown): KmsError {
    this.noteError(reason);
    const held = this.warnings.pass(reason);
    if (held !== undefined) this.options.logger.warn({ operation: what, reason, heldBack: held }, 'HSM unavailable: answering 503');
    return new KmsError('KMS.0104', { cause });
  }

  private noteError(cause: string): void {
    this.lastError = { cause, at: new Date().toISOString() };
  }

  /**
   * Runs an operation with the key's cached handle. A stale handle (the object was destroyed or
   * re-created by another process) gets one fresh lookup. A key the token does not show is looked
   * for once more after the token was re-read (several processes share the token, and a module's
   * view of it can lag behind another process's writes); still missing, it is KMS.0207.
   */
  private async withKey<T>(
    ref: MaterialRef,
    what: string,
    operation: (lease: Lease, key: Buffer) => Promise<T>,
  ): Promise<T> {
    const cacheKey = materialKey(ref);
    let reread = false;
    for (let attempt = 1; ; attempt++) {
      const cached = this.handles.get(cacheKey);
      try {
        return await this.withSession(
          what,
          async (lease) => {
            // Read again here, not `cached`: a retry inside withSession may follow a module
            // re-initialisation, after which the handle read before it names another object or none.
            const known = this.handles.get(cacheKey);
            const key = known ?? this.find(lease.session, ref);
            if (!key) throw new MaterialMissing(cacheKey);
            if (!known) this.handles.set(cacheKey, key);
            return operation(lease, key);
          },
        );
      } catch (error) {
        if (error instanceof MaterialMissing) {
          if (reread) throw new KmsError('KMS.0207', { cause: error });
          // No lease is held here: the re-read waits for every session to come back.
          reread = true;
          await this.rereads.after();
          continue;
        }
        if (error instanceof KmsError || classifyCkr(error) !== 'handle') throw error;
        this.handles.delete(cacheKey);
        if (attempt === 1 && cached) continue;
        throw new KmsError('KMS.0207', { cause: error });
      }
    }
  }

  /** Serialises this process's changes of the token with those of the service's other processes. */
  private changingToken<T>(work: () => Promise<T>): Promise<T> {
    return this.options.writeLock ? this.options.writeLock.hold(work) : work();
  }

  /** Re-initialises the module once per failed generation; concurrent callers share the work. */
  private recover(failedGeneration: number, what: string, cause: unknown): Promise<void> {
    if (this.recovering) return this.recovering;
    if (failedGeneration !== this.pool.currentGeneration || this.inBackoff()) return Promise.resolve();
    this.noteError(ckrName(cause));
    this.options.logger.error({ operation: what, cause: ckrName(cause) }, 'HSM module failure; re-initialising the module');
    return this.reinitialise();
  }

  /**
   * Finalises and initialises the module again, which also makes it read the token afresh, then
   * enumerates the token's keys into the handle cache. Concurrent callers share one run; it never
   * rejects. A run that fails starts a back-off (doubling, capped), during which requests get 503 at
   * once and no other run starts; the first request after it tries again.
   */
  private reinitialise(): Promise<void> {
    if (this.closed || this.inBackoff()) return Promise.resolve();
    this.recovering ??= (async () => {
      this.reinitialisations++;
      this.pool.reset();
      // Finalising while another thread is inside the module is undefined behaviour: wait for them,
      // but not for a call that hung. Its session is forgotten, and the module finalised under it:
      // the lesser harm, since otherwise one hung call keeps every request waiting.
      if (!(await this.pool.drained(this.callTimeoutMs))) {
        this.options.logger.warn({ waitedMs: this.callTimeoutMs }, 'HSM calls still running at re-initialisation: their sessions are abandoned');
      }
      this.handles.clear();
      try {
        this.lib.C_Finalize();
      } catch {
        // Already finalised or the device is gone; initialising again is what matters.
      }
      let failed: { error: unknown; step: string } | undefined;
      try {
        this.module.initialize(initializeOptions(this.options.initArgs));
        await this.attachToken();
      } catch (error) {
        failed = { error, step: 'the module cannot be initialised' };
      }
      // Only now may sessions be opened again: before, they would belong to the old module.
      this.pool.resume();
      // On a pooled session, which stays open: SoftHSM voids object handles once a token's last
      // session closes. Callers wait for this (they wait for `recovering`).
      if (!failed) {
        try {
          const lease = await this.pool.acquire(this.callTimeoutMs);
          try {
            this.enumerate(lease.session);
          } finally {
            this.pool.release(lease);
          }
        } catch (error) {
          failed = { error, step: 'the token cannot be enumerated' };
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

  private failure(what: string, kind: CkrClass, cause: unknown): KmsError {
    this.noteError(ckrName(cause));
    // An HSM out of sessions or memory fails every request alike: log it once in a while, not each time.
    const held = kind === 'busy' ? this.warnings.pass(`busy ${ckrName(cause)}`) : 0;
    if (held !== undefined) this.options.logger.error({ operation: what, cause: ckrName(cause), heldBack: held || undefined }, 'HSM operation failed');
    if (kind === 'internal' || kind === 'pin') return new KmsError('KMS.0103', { cause });
    return new KmsError('KMS.0104', { cause });
  }

  // ---- token, slot and objects -------------------------------------------------------------------

  /** Stops start-up with one line naming what the token lacks, instead of failing on the first request. */
  private checkMechanisms(): void {
    if (!this.slot) throw new HsmStartError('the token has not been found');
    const missing = missingMechanisms(this.lib.C_GetMechanismList(this.slot.handle));
    if (missing.length > 0) throw new HsmStartError(`token "${this.options.tokenLabel}" lacks ${missing.join(', ')}, which the service needs`);
  }

  /**
   * Finds the token's slot in the initialised module. A token that is not listed, or cannot be
   * read, may be one another process is rewriting: the module is initialised again, a few times,
   * before that counts as missing. Never creates a token (see createTokenIfMissing).
   */
  private async attachToken(): Promise<void> {
    const { tokenLabel, modulePath } = this.options;
    for (let attempt = 1; ; attempt++) {
      let problem: HsmStartError;
      try {
        const matching = tokenSlots(this.module, tokenLabel);
        if (matching.length > 1) throw new HsmStartError(`more than one token is labelled "${tokenLabel}"`);
        if (matching[0]) {
          this.slot = matching[0];
          return;
        }
        problem = new HsmStartError(`no token labelled "${tokenLabel}" in ${modulePath}`);
      } catch (error) {
        if (error instanceof HsmStartError) throw error;
        problem = new HsmStartError(`cannot read the tokens of ${modulePath}: ${ckrName(error)}`, { cause: error });
      }
      if (attempt === ATTACH_ATTEMPTS) throw problem;
      await sleep(ATTACH_RETRY_MS);
      try {
        this.lib.C_Finalize();
      } catch {
        // Initialising again is what matters.
      }
      this.module.initialize(initializeOptions(this.options.initArgs));
    }
  }

  private openSession(): Buffer {
    if (!this.slot) throw new HsmStartError('the token has not been found');
    const session = this.lib.C_OpenSession(this.slot.handle, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
    try {
      // Login is per application, not per session: only the first session (or the first after every
      // session was closed) needs it.
      const { state } = this.lib.C_GetSessionInfo(session);
      if (!USER_SESSION_STATES.has(state)) {
        try {
          this.lib.C_Login(session, pkcs11.CKU_USER, this.options.pin);
        } catch (error) {
          if (ckrOf(error) !== pkcs11.CKR_USER_ALREADY_LOGGED_IN) throw error;
        }
      }
    } catch (error) {
      try {
        this.lib.C_CloseSession(session);
      } catch {
        // Closing is best effort; the login failure is what the caller needs.
      }
      throw error;
    }
    return session;
  }

  /** One fresh lookup by CKA_ID; always ends the search with C_FindObjectsFinal. */
  private find(session: Buffer, ref: MaterialRef): Buffer | undefined {
    return this.findAll(session, ref)[0];
  }

  /** Every object with the material's CKA_ID (normally one; more only after an interrupted creation elsewhere). */
  private findAll(session: Buffer, ref: MaterialRef): Buffer[] {
    this.lib.C_FindObjectsInit(session, findMaterialTemplate(ref));
    try {
      return this.lib.C_FindObjects(session, 16);
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
  }

  /** Reads every secret key of the token once and caches the handles of ours. */
  private enumerate(session: Buffer): void {
    const all: Buffer[] = [];
    this.lib.C_FindObjectsInit(session, ALL_SECRET_KEYS_TEMPLATE);
    try {
      for (;;) {
        const batch = this.lib.C_FindObjects(session, FIND_BATCH);
        all.push(...batch);
        if (batch.length < FIND_BATCH) break;
      }
    } finally {
      this.lib.C_FindObjectsFinal(session);
    }
    for (const handle of all) {
      const [label] = this.lib.C_GetAttributeValue(session, handle, [{ type: pkcs11.CKA_LABEL }]);
      const ref = label?.value instanceof Buffer ? parseObjectLabel(label.value.toString('utf8')) : undefined;
      if (ref) this.handles.set(materialKey(ref), handle);
    }
  }

}

/** The token does not show the material (inside withKey only: it decides between a re-read and 404). */
class MaterialMissing extends Error {
  constructor(material: string) {
    super(`no key material for ${material} in the token`);
    this.name = 'MaterialMissing';
  }
}

/** The call deadline passed before the call (or the wait) ended. */
class DeadlinePassed extends Error {
  constructor() {
    super('the HSM call deadline passed');
    this.name = 'DeadlinePassed';
  }
}

/**
 * `work`'s result, or {@link DeadlinePassed} at `deadline` (a performance.now() time). Work already
 * settled wins even past the deadline: a synchronous call that took too long has still succeeded.
 */
async function beforeDeadline<T>(work: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const passed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlinePassed()), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([work, passed]);
  } finally {
    clearTimeout(timer);
  }
}
