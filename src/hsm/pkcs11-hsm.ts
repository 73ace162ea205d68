import type { Logger } from 'pino';
import { KmsError } from '../errors';
import { ckrName, classifyCkr } from './ckr';
import { describeCapabilities, detectCapabilities } from './capabilities';
import type {
  AsymmetricDecryption,
  Hsm,
  HsmAlgorithm,
  HsmCapabilities,
  HsmState,
  KeyAgreement,
  KeyImport,
  KeyPairs,
  KeySpec,
  KeyUsage,
  MaterialRef,
  MessageAuthentication,
  Signing,
  SymmetricEncryption,
  WrappingAlgorithm,
} from './hsm';
import type { HsmObserver } from './hsm-observer';
import { KEY_KINDS } from './key-kinds';
import { AesGcm, IV_BYTES } from './key-kinds/aes-gcm';
import { aesGcmSelfTest } from './key-kinds/aes-gcm-self-test';
import { AES_256 } from './key-kinds/aes-256';
import { KeyObjects } from './key-objects';
import { missingMechanisms } from './mechanisms';
import { NO_OVERRIDES, type CapabilityOverrides, type ProfileName } from './profile-names';
import type { Pkcs11Profile } from './profiles';
import { RandomPool } from './random-pool';
import { Pkcs11AsymmetricDecryption } from './roles/asymmetric-decryption';
import { Pkcs11KeyAgreement } from './roles/key-agreement';
import { Pkcs11KeyImport, type PrivateKeyImporting } from './roles/key-import';
import { Pkcs11KeyPairs } from './roles/key-pairs';
import { Pkcs11Mac } from './roles/mac';
import { Pkcs11Signing } from './roles/signing';
import { SessionRunner } from './session-runner';
import { HsmStartError } from './start-error';
import { TokenConnection } from './token-connection';
import type { TokenLock } from './token-lock';

/** The default of {@link Pkcs11HsmOptions.generateTimeoutMs}. */
const GENERATE_TIMEOUT_MS = 60_000;

/** Until start-up has read the module's mechanisms: nothing. */
const NO_CAPABILITIES: HsmCapabilities = { specs: new Map(), missing: [], algorithms: new Set(), hashedInService: new Set(), wrappingAlgorithms: new Set(), privateKeySpecs: new Set() };

export interface Pkcs11HsmOptions {
  readonly modulePath: string;
  /** The module's own initialisation string, passed to C_Initialize (see initializeOptions). */
  readonly initArgs?: string;
  /** The module's profile (see profiles.ts); `auto` (the default) detects it from C_GetInfo. */
  readonly profile?: ProfileName | 'auto';
  /** Capabilities set one by one over the profile's (default: the profile's). */
  readonly capabilities?: CapabilityOverrides;
  readonly tokenLabel: string;
  /** The user PIN. Kept in memory for logins after a re-initialisation; never logged. */
  readonly pin: string;
  readonly sessions: number;
  /**
   * Milliseconds an operation may take (default 5000), which covers waiting for a module recovery,
   * waiting for a session and the asynchronous calls (encryption and decryption with the profile's
   * `async` calls; key generation has its own, generateTimeoutMs). A call on a libuv thread cannot be cancelled: at the deadline the
   * caller gets KMS.0104 and the session is abandoned (closed when the call comes back). A
   * synchronous call (the *Init calls, and encryption with `sync` calls) blocks the event loop and
   * cannot be timed out from JavaScript at all. Also bounds a recovery's wait for the calls in flight.
   */
  readonly callTimeoutMs?: number;
  /**
   * Milliseconds a key generation may take (default 60000, never less than `callTimeoutMs`): a key
   * pair's generation is a search for primes, seconds for RSA-4096 even in software, and longer on a
   * loaded machine or a slow device. Past it, as for a call: KMS.0104 and the session abandoned.
   */
  readonly generateTimeoutMs?: number;
  /** Callers that may wait for a session (default 1024); the next one gets KMS.0104 at once. */
  readonly maxWaiters?: number;
  /**
   * Held while this process creates or destroys token objects, shared with the other processes of
   * the service (see {@link TokenLock}); without it, writes are not serialised across processes.
   * Closed with the HSM.
   */
  readonly writeLock?: TokenLock;
  readonly logger: Logger;
  /** Told of every operation's duration and PKCS#11 outcome (the metrics). */
  readonly observer?: HsmObserver;
}

/**
 * The one implementation of {@link Hsm}, over graphene-pk11: the token's bootstrap
 * ({@link TokenConnection}), the session runner (pool, deadlines, recovery, retries), the token's
 * key objects, the module's capabilities, and one implementation per role (src/hsm/roles/, and
 * AES-GCM in key-kinds/) serving every key kind (key-kinds/index.ts). Nothing else in the service
 * makes PKCS#11 calls. Every method keeps the seam's error contract (hsm.ts): whatever
 * escapes a part as a raw error becomes KMS.0103 here.
 */
export class Pkcs11Hsm implements Hsm {
  private readonly keys: KeyObjects;
  private readonly runner: SessionRunner;
  private readonly randomPool: RandomPool;
  private closed = false;
  private detected: HsmCapabilities = NO_CAPABILITIES;

  // The roles (see hsm.ts).
  readonly symmetric: SymmetricEncryption;
  readonly signing: Signing;
  readonly asymmetricDecryption: AsymmetricDecryption;
  readonly keyAgreement: KeyAgreement;
  readonly mac: MessageAuthentication;
  readonly keyPairs: KeyPairs;
  private importRole: KeyImport | undefined;

  private constructor(
    private readonly connection: TokenConnection,
    private readonly options: Pkcs11HsmOptions,
  ) {
    const callTimeoutMs = options.callTimeoutMs ?? 5000;
    this.keys = new KeyObjects(() => this.runner, options.logger, options.writeLock, Math.max(callTimeoutMs, options.generateTimeoutMs ?? GENERATE_TIMEOUT_MS));
    this.runner = new SessionRunner(connection, {
      sessions: options.sessions,
      callTimeoutMs,
      maxWaiters: options.maxWaiters ?? 1024,
      logger: options.logger,
      observer: options.observer,
      beforeReinitialise: () => this.keys.clear(),
      afterReinitialise: (session) => this.keys.readToken(session),
    });
    this.randomPool = new RandomPool((length) => this.runner.run('generate random', (session) => session.generateRandom(length)));
    const { profile } = connection;
    // Each role's methods keep the seam's error contract at its edge (keepContract).
    const aesGcm = new AesGcm(this.keys, profile, () => this.randomPool.takeNow(IV_BYTES) ?? this.randomPool.take(IV_BYTES));
    this.symmetric = {
      encrypt: (ref, plaintext, aad) => keepContract(aesGcm.encrypt(ref, plaintext, aad)),
      decrypt: (ref, sealed, aad) => keepContract(aesGcm.decrypt(ref, sealed, aad)),
    };
    const signing = new Pkcs11Signing(this.keys, profile, () => this.detected);
    this.signing = {
      sign: (ref, input) => keepContract(signing.sign(ref, input)),
      verify: (ref, input, signature) => keepContract(signing.verify(ref, input, signature)),
    };
    const rsa = new Pkcs11AsymmetricDecryption(this.keys, profile, () => this.detected);
    this.asymmetricDecryption = { decrypt: (ref, algorithm, ciphertext) => keepContract(rsa.decrypt(ref, algorithm, ciphertext)) };
    const ecdh = new Pkcs11KeyAgreement(this.keys, profile);
    this.keyAgreement = { deriveSharedSecret: (ref, spec, peer) => keepContract(ecdh.deriveSharedSecret(ref, spec, peer)) };
    const hmac = new Pkcs11Mac(this.keys, profile);
    this.mac = {
      generateMac: (ref, algorithm, message) => keepContract(hmac.generateMac(ref, algorithm, message)),
      verifyMac: (ref, algorithm, message, mac) => keepContract(hmac.verifyMac(ref, algorithm, message, mac)),
    };
    const keyPairs = new Pkcs11KeyPairs(this.keys);
    this.keyPairs = { publicKey: (ref, spec) => keepContract(keyPairs.publicKey(ref, spec)) };
  }

  /** The import role, once start-up found the module can unwrap with a wrapping algorithm the API names. */
  get keyImport(): KeyImport | undefined {
    return this.importRole;
  }

  /** What the module can do, read at start-up. */
  get capabilities(): HsmCapabilities {
    return this.detected;
  }

  supports(spec: KeySpec, usage: KeyUsage): boolean {
    return this.detected.specs.get(spec)?.has(usage) === true;
  }

  supportsAlgorithm(algorithm: HsmAlgorithm): boolean {
    return this.detected.algorithms.has(algorithm);
  }

  /** How this module differs where the service depends on it. */
  get profile(): Pkcs11Profile {
    return this.connection.profile;
  }

  /**
   * Loads the module, finds the token, checks that it offers the mechanisms AES_256 needs (the
   * service's own kind), logs in, proves AES-GCM works as the profile says, finds what the other key
   * kinds can do (logged: a spec the module cannot do is refused at create-key), and reads the
   * token's keys.
   */
  static async open(options: Pkcs11HsmOptions): Promise<Pkcs11Hsm> {
    let connection: TokenConnection;
    try {
      connection = await TokenConnection.open({
        modulePath: options.modulePath,
        initArgs: options.initArgs,
        profile: options.profile ?? 'auto',
        capabilities: options.capabilities ?? NO_OVERRIDES,
        tokenLabel: options.tokenLabel,
        pin: options.pin,
      });
    } catch (error) {
      options.writeLock?.close();
      throw asStartError(error);
    }
    const hsm = new Pkcs11Hsm(connection, options);
    try {
      const table = connection.mechanisms();
      const missing = missingMechanisms(table.offered(), AES_256.mechanisms);
      if (missing.length > 0) throw new HsmStartError(`token "${options.tokenLabel}" lacks ${missing.join(', ')}, which the service needs`);
      const findings = await hsm.runner.once((session) => aesGcmSelfTest(session, connection.profile));
      if (findings.badTagAnswer) {
        options.logger.warn(
          { profile: connection.profile.name, answer: findings.badTagAnswer },
          'the module answers a tampered AES-GCM tag with a code its profile does not take for one: such requests will get 500, not 400 (set KMS_PKCS11_PROFILE)',
        );
      }
      const detected = await hsm.runner.once((session) => detectCapabilities(KEY_KINDS.values(), table, session));
      hsm.detected = detected;
      if (detected.wrappingAlgorithms.size > 0) hsm.importRole = hsm.keyImportRole(detected.wrappingAlgorithms, detected.privateKeyImport);
      await hsm.runner.once((session) => hsm.keys.readToken(session));
    } catch (error) {
      await hsm.close();
      throw asStartError(error);
    }
    const { profile } = connection;
    options.logger.info(
      {
        module: options.modulePath,
        profile: profile.name,
        gcmIv: profile.gcmIv,
        cryptoCalls: profile.cryptoCalls,
        token: options.tokenLabel,
        sessions: hsm.runner.state().sessions.size,
        keys: hsm.keys.size,
      },
      'HSM ready',
    );
    options.logger.info(describeCapabilities(hsm.detected), 'HSM key specs: the usages this module can serve for each');
    return hsm;
  }

  private keyImportRole(algorithms: ReadonlySet<WrappingAlgorithm>, privateKeys: PrivateKeyImporting | undefined): KeyImport {
    const role = new Pkcs11KeyImport(this.keys, this.connection.profile, algorithms, privateKeys);
    return {
      wrappingAlgorithms: role.wrappingAlgorithms,
      privateKeySpecs: role.privateKeySpecs,
      unwrapPrivateKey: (request) => keepContract(role.unwrapPrivateKey(request)),
      createWrappingKey: (keyId) => keepContract(role.createWrappingKey(keyId)),
      wrappingPublicKey: (keyId) => keepContract(role.wrappingPublicKey(keyId)),
      destroyWrappingKey: (keyId) => keepContract(role.destroyWrappingKey(keyId)),
      unwrapKey: (ref, spec, keyId, algorithm, wrapped, expected) => keepContract(role.unwrapKey(ref, spec, keyId, algorithm, wrapped, expected)),
    };
  }

  listKeys(): MaterialRef[] {
    return this.keys.list();
  }

  generateKey(ref: MaterialRef, spec: KeySpec = 'AES_256', options: { readonly fresh?: boolean; readonly usage?: KeyUsage } = {}): Promise<void> {
    const kind = KEY_KINDS.get(spec);
    if (!kind) return Promise.reject(new KmsError('KMS.0103', { cause: new Error(`key spec ${spec} is not implemented behind the HSM seam`) }));
    const usage = options.usage ?? kind.defaultUsage;
    if (!kind.usages.has(usage)) return Promise.reject(new KmsError('KMS.0103', { cause: new Error(`${spec} keys cannot be made for ${usage}`) }));
    return keepContract(this.keys.generate(ref, kind, usage, options.fresh === true));
  }

  destroyKey(ref: MaterialRef): Promise<boolean> {
    return keepContract(this.keys.destroy(ref));
  }

  hasKey(ref: MaterialRef): Promise<boolean> {
    return keepContract(this.keys.has(ref));
  }

  random(length: number): Promise<Buffer> {
    const inHand = this.randomPool.takeNow(length);
    return inHand ? Promise.resolve(inHand) : keepContract(this.randomPool.take(length));
  }

  ping(): Promise<void> {
    return keepContract(
      this.runner.run('ping', async (session) => {
        session.generateRandom(1).fill(0);
      }),
    );
  }

  state(): HsmState {
    return this.runner.state();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A call that hung is not waited for past its deadline: the process is going away.
    await this.runner.close();
    this.connection.close();
    this.options.writeLock?.close();
  }
}

/** The seam's error contract at its edge: what is not a KmsError yet (a stale handle twice, a graphene TypeError) is a server fault. */
function keepContract<T>(work: Promise<T>): Promise<T> {
  return work.catch((error: unknown) => {
    throw error instanceof KmsError ? error : new KmsError('KMS.0103', { cause: error });
  });
}

function asStartError(error: unknown): HsmStartError {
  if (error instanceof HsmStartError) return error;
  if (classifyCkr(error) === 'pin') return new HsmStartError(`PKCS#11 login refused: ${ckrName(error)}`);
  return new HsmStartError(`PKCS#11 start-up failed: ${ckrName(error)}`, { cause: error });
}
