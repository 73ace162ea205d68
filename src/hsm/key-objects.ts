import * as graphene from 'graphene-pk11';
import type { Logger } from 'pino';
import { KmsError } from '../errors';
import { classifyCkr } from './ckr';
import type { MaterialRef } from './hsm';
import type { HsmCallName } from './hsm-observer';
import type { KeyUsage } from './hsm';
import type { GeneratedObject, KeyKind } from './key-kinds/key-kind';
import { RereadSchedule } from './reread-schedule';
import type { SessionRunner } from './session-runner';
import { allKeysTemplate, findMaterialObjectTemplate, findMaterialTemplate, KEY_OBJECT_CLASSES, parseObjectLabel, type KeyObjectClass } from './templates';
import type { TokenLock } from './token-lock';

/**
 * A key the database knows but the token does not show makes this process re-read the token (by
 * re-initialising the module) before it answers 404; at most once per this interval.
 */
const REREAD_MIN_INTERVAL_MS = 1000;
/**
 * Material confirmed missing (by a re-read) is remembered for this many keys at most, the oldest
 * forgotten first: a forgotten one costs one more re-read, never a wrong answer.
 */
const MAX_CONFIRMED_MISSING = 1024;

/** The cache's key of one object of a material version: `<key id>/<version>/<class>`. */
function objectKey(ref: MaterialRef, objectClass: KeyObjectClass): string {
  return `${ref.keyId}/${ref.version}/${objectClass}`;
}

function objectKeys(ref: MaterialRef): string[] {
  return KEY_OBJECT_CLASSES.map((objectClass) => objectKey(ref, objectClass));
}

/**
 * The token's key objects as this process sees them: a cache of object handles by material
 * reference (key and version) and object class, so that a key pair is a private and a public key
 * object (the token is read once at start-up and after each re-initialisation, because a find
 * gets slower as the token fills), fresh lookups, and the changes of the token (generation and
 * destruction), which every process of the service makes only under the token lock.
 *
 * Throws what the session runner throws (KmsErrors), and KMS.0207 for material the token does not
 * hold after a fresh lookup and a re-read of the token.
 */
export class KeyObjects {
  private readonly handles = new Map<string, Buffer>();
  private readonly rereads: RereadSchedule;
  /**
   * Material a re-read of the token did not show either, with the token lock's change mark at that
   * moment: until another process of the service changes the token (every change is made under
   * the lock) or this one makes the material, a request for it is answered KMS.0207 at once, without
   * a search or another re-read (a client asking again and again for such a key made its worker
   * re-initialise the module and read the whole token once a second). Bounded: MAX_CONFIRMED_MISSING.
   */
  private readonly confirmedMissing = new Map<string, number>();

  constructor(
    private readonly runner: () => SessionRunner,
    private readonly logger: Logger,
    private readonly writeLock: TokenLock | undefined,
    /** The deadline of a generation, longer than a call's: an RSA-4096 key pair takes seconds even in software. */
    private readonly generateTimeoutMs: number,
  ) {
    this.rereads = new RereadSchedule(() => {
      this.logger.warn('key material not found: re-reading the token before answering');
      return this.runner().reinitialise('reread');
    }, REREAD_MIN_INTERVAL_MS);
  }

  /** The material versions held (a key pair's two objects count once). */
  get size(): number {
    return this.list().length;
  }

  list(): MaterialRef[] {
    const refs = new Map<string, MaterialRef>();
    for (const key of this.handles.keys()) {
      const [keyId, version] = key.split('/');
      refs.set(`${keyId}/${version}`, { keyId: keyId!, version: Number(version) });
    }
    return [...refs.values()];
  }

  /** Forgets every handle (the module is being re-initialised: they will name other objects, or none). */
  clear(): void {
    this.handles.clear();
  }

  /**
   * Reads every key object of the token once, class by class (secret, private and public keys),
   * and caches the handles of ours. An object whose label cannot be read is skipped (and counted in
   * the log): it cannot be one this service can use, and one unreadable object must not stop the
   * service from starting.
   */
  readToken(session: graphene.Session): void {
    let unreadable = 0;
    for (const objectClass of KEY_OBJECT_CLASSES) {
      const objects = session.find(allKeysTemplate(objectClass));
      for (let i = 0; i < objects.length; i++) {
        const object = objects.items(i);
        let label: unknown;
        try {
          label = object.getAttribute({ label: null }).label;
        } catch {
          unreadable++;
          continue;
        }
        const ref = typeof label === 'string' ? parseObjectLabel(label) : undefined;
        if (ref) this.handles.set(objectKey(ref, objectClass), object.handle);
      }
    }
    if (unreadable > 0) this.logger.warn({ unreadable }, 'key objects of the token whose label cannot be read were skipped');
  }

  /**
   * Generates `ref`'s material of `kind`, or keeps what the token holds for it already. Under the
   * token lock, after a fresh look (see TokenLock): a look brings this process's view of the token
   * up to date before the write, and a retry after a failure that came once the HSM had made the key
   * finds that key instead of making a second one.
   *
   * With `fresh` (a key id made for this creation, which no material can have yet) the first try
   * does not search the token: a search reads every object of a file-backed token (SoftHSM opens
   * and reads each object's file and the token's generation file per object), which made every
   * creation cost in proportion to the keys already there. The look that refreshes the view is then
   * a read of one object this process knows (see refreshView); a retry inside the runner (after a
   * lost session or a module recovery) searches as before, since the failed try may have made the
   * object.
   */
  async generate(ref: MaterialRef, kind: KeyKind, usage: KeyUsage, fresh = false): Promise<void> {
    await this.changingToken(() => {
      let tries = 0;
      return this.runner().run('generate key', async (session) => {
        tries++;
        let existing: Array<{ objectClass: KeyObjectClass; handle: Buffer }> = [];
        // The search as before when the one read did not do (see refreshView).
        if (!(fresh && tries === 1 && this.refreshView(session))) {
          existing = kind.objectClasses.flatMap((objectClass) => this.findAll(session, ref, objectClass).slice(0, 1).map((handle) => ({ objectClass, handle })));
          if (existing.length > 0 && existing.length < kind.objectClasses.length) {
            // Half a key pair (a module that made the pair's objects one by one was interrupted):
            // useless, so it is destroyed and the pair made again.
            for (const { handle } of existing) new graphene.SessionObject(handle, session, session.lib).destroy();
            existing = [];
          }
        }
        const objects = existing.length > 0 ? existing : await kind.generate(session, ref, usage);
        // Cached before the session goes back, so a module re-initialisation (which waits for every
        // session) cannot run in between and leave a handle of the old module in the cache.
        for (const { objectClass, handle } of objects) this.handles.set(objectKey(ref, objectClass), handle);
        for (const key of objectKeys(ref)) this.confirmedMissing.delete(key);
      }, this.generateTimeoutMs);
    });
  }

  /**
   * Makes `ref`'s objects with `make`, after destroying whatever the token holds for `ref` (the
   * wrapping key an import request replaces, or what an interrupted import left), and caches them.
   * Under the token lock, like {@link generate}. `make` runs on the session it is given and may
   * find other objects there ({@link lookup}); a retry inside the runner runs it again, from the
   * destruction on, so it must make its objects anew each time.
   */
  async replace<T>(ref: MaterialRef, what: HsmCallName, make: (session: graphene.Session) => Promise<{ objects: GeneratedObject[]; value: T }>, timeoutMs?: number): Promise<T> {
    return this.changingToken(() =>
      this.runner().run(
        what,
        async (session) => {
          for (const key of objectKeys(ref)) this.handles.delete(key);
          for (const handle of this.findAll(session, ref)) {
            try {
              new graphene.SessionObject(handle, session, session.lib).destroy();
            } catch (error) {
              if (classifyCkr(error) !== 'handle') throw error;
            }
          }
          const { objects, value } = await make(session);
          for (const { objectClass, handle } of objects) this.handles.set(objectKey(ref, objectClass), handle);
          for (const key of objectKeys(ref)) this.confirmedMissing.delete(key);
          return value;
        },
        timeoutMs ?? this.generateTimeoutMs,
      ),
    );
  }

  /**
   * The handle of one object of `ref` on `session`, found now (a fresh lookup, not the cache: under
   * the token lock, another process may have replaced it) and cached; undefined when the token holds none.
   */
  lookup(session: graphene.Session, ref: MaterialRef, objectClass: KeyObjectClass): Buffer | undefined {
    const found = this.findAll(session, ref, objectClass)[0];
    if (found) this.handles.set(objectKey(ref, objectClass), found);
    return found;
  }

  /**
   * Makes the module look at the token again, in time proportional to what changed, not to the
   * token: SoftHSM re-reads its token directory (only when another process moved the token's
   * generation counter) whenever one of its objects is read. Any object of ours will do; when this
   * process knows none, a search does it (the token then holds none of ours to read).
   * False when the read failed otherwise, so that the caller searches as it would without `fresh`:
   * SoftHSM answers CKR_GENERAL_ERROR to a read that meets another process's rewrite of a file half
   * done, and a read made only for its side effect must not fail a creation.
   */
  private refreshView(session: graphene.Session): boolean {
    const known = this.handles.entries().next();
    if (known.done) return false;
    const [cacheKey, handle] = known.value;
    try {
      new graphene.SessionObject(handle, session, session.lib).getAttribute({ class: null });
    } catch (error) {
      if (classifyCkr(error) !== 'handle') return false;
      // Its object was destroyed elsewhere: reading it still made the module look, which is what
      // counts here; the handle is dropped (its key's next use looks it up afresh).
      this.handles.delete(cacheKey);
    }
    return true;
  }

  /**
   * Destroys every object of `ref`; whether there was any. Under the token lock, after a fresh look
   * (the find itself): the material of a key of this data directory is only ever made under the same
   * lock, so what this look does not find is not there, and no re-read of the token is needed (it
   * would cost every interrupted creation a second).
   */
  async destroy(ref: MaterialRef): Promise<boolean> {
    return this.changingToken(() =>
      this.runner().run('destroy key', async (session) => {
        for (const key of objectKeys(ref)) this.handles.delete(key);
        const found = this.findAll(session, ref);
        for (const handle of found) {
          try {
            new graphene.SessionObject(handle, session, session.lib).destroy();
          } catch (error) {
            // Another process destroyed it between our find and our destroy: it is gone either way.
            if (classifyCkr(error) !== 'handle') throw error;
          }
        }
        return found.length > 0;
      }),
    );
  }

  /** Whether the token holds `ref`'s material: a fresh lookup under the token lock, not the cache. */
  async has(ref: MaterialRef): Promise<boolean> {
    return this.changingToken(() => this.runner().run('find key', async (session) => this.findAll(session, ref).length > 0));
  }

  /**
   * Runs an operation with the key's object. A stale handle (the object was destroyed or re-created
   * by another process) gets one fresh lookup. A key the token does not show is looked for once more
   * after the token was re-read (several processes share the token, and a module's view of it can
   * lag behind another process's writes); still missing, it is KMS.0207.
   */
  withKey<T>(ref: MaterialRef, what: HsmCallName, operation: (session: graphene.Session, key: graphene.SecretKey) => T | Promise<T>): Promise<T> {
    return this.withObject(ref, 'secret', what, (session, handle) => operation(session, new graphene.SecretKey(handle, session, session.lib)));
  }

  /** {@link withKey} for any object of the material: its secret key, or its private or public key. */
  withObject<T>(ref: MaterialRef, objectClass: KeyObjectClass, what: HsmCallName, operation: KeyOperation<T>): Promise<T> {
    const cacheKey = objectKey(ref, objectClass);
    // The first attempt without an async frame of its own (this runs on every encryption); a
    // failure goes on in retry(), which decides between a fresh lookup, a re-read and KMS.0207.
    const cached = this.handles.get(cacheKey);
    if (cached === undefined && this.stillMissing(cacheKey)) return Promise.reject(new KmsError('KMS.0207', { cause: new MaterialMissing(cacheKey) }));
    const target = { ref, objectClass, cacheKey };
    return this.attempt(target, what, operation).catch((error: unknown) => this.retry(error, cached !== undefined, target, what, operation));
  }

  /** Whether `cacheKey` was confirmed missing and nothing changed the token since (else it is forgotten). */
  private stillMissing(cacheKey: string): boolean {
    const mark = this.confirmedMissing.get(cacheKey);
    if (mark === undefined) return false;
    if (mark === this.writeLock?.changesElsewhere()) return true;
    this.confirmedMissing.delete(cacheKey);
    return false;
  }

  private confirmMissing(cacheKey: string, mark: number | undefined): void {
    // Without the lock there is no signal of other processes' changes: nothing is remembered then.
    if (mark === undefined) return;
    this.confirmedMissing.delete(cacheKey);
    if (this.confirmedMissing.size >= MAX_CONFIRMED_MISSING) this.confirmedMissing.delete(this.confirmedMissing.keys().next().value!);
    this.confirmedMissing.set(cacheKey, mark);
  }

  private async retry<T>(firstError: unknown, hadCachedHandle: boolean, target: ObjectTarget, what: HsmCallName, operation: KeyOperation<T>): Promise<T> {
    const { cacheKey } = target;
    let error = firstError;
    let reread = false;
    /** The token lock's change mark before the look that followed the re-read. */
    let markAfterReread: number | undefined;
    let cached = hadCachedHandle;
    for (let attempt = 1; ; attempt++) {
      if (error instanceof MaterialMissing) {
        if (reread) {
          this.confirmMissing(cacheKey, markAfterReread);
          throw new KmsError('KMS.0207', { cause: error });
        }
        // No session is held here: the re-read waits for every session to come back.
        reread = true;
        await this.rereads.after();
        markAfterReread = this.writeLock?.changesElsewhere();
      } else {
        if (error instanceof KmsError || classifyCkr(error) !== 'handle') throw error;
        this.handles.delete(cacheKey);
        // Only the first attempt's cached handle gets a fresh lookup: a handle found just now and stale already names nothing.
        if (!(attempt === 1 && cached)) throw new KmsError('KMS.0207', { cause: error });
      }
      cached = this.handles.has(cacheKey);
      try {
        return await this.attempt(target, what, operation);
      } catch (next) {
        error = next;
      }
    }
  }

  /** One run of `operation` with the key's object: the cached handle, or one found now (and cached). */
  private attempt<T>({ ref, objectClass, cacheKey }: ObjectTarget, what: HsmCallName, operation: KeyOperation<T>): Promise<T> {
    return this.runner().run(what, (session) => {
      // Read again here, not before run(): a retry inside run() may follow a module
      // re-initialisation, after which a handle read before it names another object or none.
      const known = this.handles.get(cacheKey);
      const handle = known ?? this.findAll(session, ref, objectClass)[0];
      if (!handle) throw new MaterialMissing(cacheKey);
      if (!known) this.handles.set(cacheKey, handle);
      return operation(session, handle);
    });
  }

  /**
   * Every object with the material's CKA_ID, of `objectClass` or of any class (normally one per
   * class; more only after an interrupted creation elsewhere).
   */
  private findAll(session: graphene.Session, ref: MaterialRef, objectClass?: KeyObjectClass): Buffer[] {
    const found = session.find(objectClass ? findMaterialObjectTemplate(ref, objectClass) : findMaterialTemplate(ref));
    const handles: Buffer[] = [];
    for (let i = 0; i < found.length; i++) handles.push(found.items(i).handle);
    return handles;
  }

  /** Serialises this process's changes of the token with those of the service's other processes. */
  private changingToken<T>(work: () => Promise<T>): Promise<T> {
    return this.writeLock ? this.writeLock.hold(work) : work();
  }
}

/** An operation on one object of a material version: on a leased session, with the object's handle. */
export type KeyOperation<T> = (session: graphene.Session, handle: Buffer) => T | Promise<T>;

/** The object an operation is for, and its key in the cache. */
interface ObjectTarget {
  readonly ref: MaterialRef;
  readonly objectClass: KeyObjectClass;
  readonly cacheKey: string;
}

/** The token does not show the material (inside withKey only: it decides between a re-read and 404). */
class MaterialMissing extends Error {
  constructor(material: string) {
    super(`no key material for ${material} in the token`);
    this.name = 'MaterialMissing';
  }
}
