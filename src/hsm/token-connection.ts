import { setTimeout as sleep } from 'node:timers/promises';
import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import { ckrName, ckrOf } from './ckr';
import { MechanismTable } from './mechanisms';
import type { CapabilityOverrides, ProfileName } from './profile-names';
import { profileFor, type Pkcs11Profile } from './profiles';
import { HsmStartError } from './start-error';
import { finalizeQuietly, initializeOptions, loadModule, tokenSlots } from './token-setup';

/**
 * Looking for the token right after C_Initialize can fail for a moment while another process
 * rewrites the token's file (SoftHSM does not list a token whose file is half-written, or answers
 * CKR_GENERAL_ERROR for it): the module is initialised again and the token looked for again.
 */
const ATTACH_ATTEMPTS = 20;
const ATTACH_RETRY_MS = 100;
/**
 * SoftHSM's C_Login reads the token's file and writes it back (the file keeps the PIN-count flags),
 * and answers CKR_GENERAL_ERROR when its read meets another process's write half done. Every process
 * of the service logs in at start-up and after each re-initialisation (a re-read of the token
 * included), several at once in a cluster or beside the command-line tool, so such an answer is
 * tried again. SoftHSM gives it before it checks the PIN, so a retry spends no PIN try; any other
 * answer (a wrong PIN, a locked one) is final at once.
 */
const LOGIN_ATTEMPTS = 20;
const LOGIN_RETRY_MS = 50;
// Session states of a logged-in user (PKCS#11 CKS_RO_USER_FUNCTIONS, CKS_RW_USER_FUNCTIONS); graphene does not name them.
const USER_SESSION_STATES: ReadonlySet<number> = new Set([1, 3]);
/** ulMaxSessionCount values that set no limit: CK_EFFECTIVELY_INFINITE, and CK_UNAVAILABLE_INFORMATION (~0, as a double). */
const NO_SESSION_LIMIT = (count: number): boolean => count === 0 || count >= 2 ** 32 - 1;

export interface TokenConnectionOptions {
  readonly modulePath: string;
  /** The module's own initialisation string, passed to C_Initialize (see initializeOptions). */
  readonly initArgs?: string;
  /** The module's profile (see profiles.ts); `auto` detects it from C_GetInfo. */
  readonly profile: ProfileName | 'auto';
  readonly capabilities: CapabilityOverrides;
  readonly tokenLabel: string;
  /** The user PIN. Kept in memory for logins after a re-initialisation; never logged. */
  readonly pin: string;
}

/**
 * The bootstrap of the token: the module loaded and initialised, the token's slot found, sessions
 * opened and logged in to, and the module initialised again when it must be. It knows nothing of
 * keys, pools or deadlines.
 *
 * Both `open` and `reinitialise` end logged in: the session they logged in on is kept for the first
 * {@link openSession} that follows, so that the login (which can meet another process's, see
 * LOGIN_ATTEMPTS) is made where it can be waited for and tried again, not inside the session pool.
 *
 * Throws: `open` and `reinitialise` throw {@link HsmStartError} (a one-line reason) for a missing or
 * ambiguous token and raw PKCS#11 errors of the module otherwise (a refused login among them);
 * `openSession` throws the module's PKCS#11 errors (the session runner classifies them).
 */
export class TokenConnection {
  readonly module: graphene.Module;
  /** How this module differs where the service depends on it. */
  readonly profile: Pkcs11Profile;
  private slotFound: graphene.Slot | undefined;
  private sessionLimit: number | undefined;
  /** The session `open` or `reinitialise` logged in on, until openSession hands it out. */
  private loggedInSession: graphene.Session | undefined;

  private constructor(private readonly options: TokenConnectionOptions) {
    this.module = loadModule(options.modulePath, options.initArgs);
    this.profile = profileFor(options.profile, this.module, options.capabilities);
  }

  /** Loads and initialises the module, finds the token and logs in (waiting out another process's rewrite of the token). */
  static async open(options: TokenConnectionOptions): Promise<TokenConnection> {
    const connection = new TokenConnection(options);
    try {
      await connection.attach();
      await connection.logIn();
    } catch (error) {
      connection.close();
      throw error;
    }
    return connection;
  }

  get slot(): graphene.Slot {
    if (!this.slotFound) throw new HsmStartError('the token has not been found');
    return this.slotFound;
  }

  /** The mechanisms the token offers (C_GetMechanismList), each with its C_GetMechanismInfo. */
  mechanisms(): MechanismTable {
    const list = this.slot.getMechanisms();
    const infos = new Map<number, pkcs11.MechanismInfo>();
    for (let i = 0; i < list.length; i++) {
      const mechanism = list.items(i);
      infos.set(mechanism.type, { minKeySize: mechanism.minKeySize, maxKeySize: mechanism.maxKeySize, flags: mechanism.flags });
    }
    return new MechanismTable(infos);
  }

  /**
   * The most sessions the token lets this application open at once (ulMaxSessionCount, read when the
   * token was found), or undefined for no limit.
   */
  maxSessions(): number | undefined {
    return this.sessionLimit;
  }

  /**
   * A read-write session, logged in as the user: the one the last `open` or `reinitialise` logged in
   * on, or a new one (login is per application: a new session needs one only when the application
   * has no other session open).
   */
  openSession(): graphene.Session {
    const loggedIn = this.loggedInSession;
    if (loggedIn) {
      this.loggedInSession = undefined;
      return loggedIn;
    }
    return this.newSession();
  }

  closeSession(session: graphene.Session): void {
    session.close();
  }

  private newSession(): graphene.Session {
    const session = this.slot.open(graphene.SessionFlag.SERIAL_SESSION | graphene.SessionFlag.RW_SESSION);
    try {
      if (!USER_SESSION_STATES.has(session.state)) {
        try {
          session.login(this.options.pin, graphene.UserType.USER);
        } catch (error) {
          if (ckrOf(error) !== pkcs11.CKR_USER_ALREADY_LOGGED_IN) throw error;
        }
      }
    } catch (error) {
      try {
        session.close();
      } catch {
        // Closing is best effort; the login failure is what the caller needs.
      }
      throw error;
    }
    return session;
  }

  /** Opens the session that logs the application in, trying a login again that met another process's (see LOGIN_ATTEMPTS). */
  private async logIn(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        this.loggedInSession = this.newSession();
        return;
      } catch (error) {
        if (ckrOf(error) !== pkcs11.CKR_GENERAL_ERROR || attempt === LOGIN_ATTEMPTS) throw error;
      }
      await sleep(LOGIN_RETRY_MS);
    }
  }

  /**
   * Finalises and initialises the module again (which also makes it read the token afresh), finds
   * the token again and logs in. Every session of the module is void afterwards, and so is every
   * object handle.
   */
  async reinitialise(): Promise<void> {
    this.slotFound = undefined;
    this.loggedInSession = undefined; // void with the module it belongs to
    try {
      this.module.finalize();
    } catch {
      // Already finalised or the device is gone; initialising again is what matters.
    }
    this.module.initialize(initializeOptions(this.options.initArgs));
    await this.attach();
    await this.logIn();
  }

  /** Finalises and unloads the module; never throws (the process is done with it). */
  close(): void {
    finalizeQuietly(this.module);
  }

  /**
   * Finds the token's slot in the initialised module. A token that is not listed, or cannot be
   * read, may be one another process is rewriting: the module is initialised again, a few times,
   * before that counts as missing. Never creates a token (see createTokenIfMissing).
   */
  private async attach(): Promise<void> {
    const { tokenLabel, modulePath } = this.options;
    for (let attempt = 1; ; attempt++) {
      let problem: HsmStartError;
      try {
        const matching = tokenSlots(this.module, tokenLabel);
        if (matching.length > 1) throw new HsmStartError(`more than one token is labelled "${tokenLabel}"`);
        if (matching[0]) {
          // Read here, where a token being rewritten by another process is retried (C_GetTokenInfo
          // answers SoftHSM's CKR_GENERAL_ERROR meanwhile), not at each use.
          const count = matching[0].getToken().maxSessionCount;
          this.sessionLimit = NO_SESSION_LIMIT(count) ? undefined : count;
          this.slotFound = matching[0];
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
        this.module.finalize();
      } catch {
        // Initialising again is what matters.
      }
      this.module.initialize(initializeOptions(this.options.initArgs));
    }
  }
}
