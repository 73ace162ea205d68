/**
 * The HSM seam: everything the KMS asks of the hardware, as roles. Key material never crosses it;
 * only key references, data to protect and results do. Each key kind the API offers is an
 * implementation of the roles it needs behind this seam (src/hsm/key-kinds/), so a new endpoint adds
 * an implementation, never a rewrite: today AES-256-GCM; the asymmetric, HMAC and import roles
 * below are the design the next endpoints fill in.
 *
 * Error contract (every method of every role): failures are {@link KmsError}s, never raw PKCS#11
 * errors.
 * - KMS.0207 the referenced key material does not exist in the token (after a fresh lookup, and a
 *   re-read of the whole token when that misses: a process's view can lag behind other processes
 *   that share the token).
 * - KMS.2201 the ciphertext or its additional data failed authentication (decryption only; only
 *   from the decryption call itself, as the module's profile says).
 * - KMS.0104 the HSM is unavailable or out of sessions/memory after one recovery attempt, the
 *   operation passed its deadline (waiting for a session, the token lock or a recovery, or inside an
 *   asynchronous call), too many callers wait for a session, or a failed re-initialisation is
 *   backing off (503).
 * - KMS.0103 any other HSM failure (500). The PKCS#11 cause is attached for the log, never for clients.
 */

/** One version of one CMK's key material, as stored in the token. */
export interface MaterialRef {
  /** The CMK's id (a lower-case UUID). */
  readonly keyId: string;
  /** The key material version, starting at 0; rotation adds versions. */
  readonly version: number;
}

/** The key kinds the API names (`key_spec`); those implemented behind the seam are in key-kinds/. */
export type KeySpec =
  | 'AES_256'
  | 'RSA_2048'
  | 'RSA_3072'
  | 'RSA_4096'
  | 'EC_P256'
  | 'EC_P384'
  | 'ED25519'
  | 'HMAC_256'
  | 'HMAC_384'
  | 'HMAC_512';

export interface SealedData {
  /** The 96-bit IV: fresh for every call (made by the service from the HSM's generator, or by the HSM itself), never reused. */
  readonly iv: Buffer;
  /** AES-GCM ciphertext followed by the 128-bit tag. */
  readonly ciphertext: Buffer;
}

// ---- roles the current endpoints use ----------------------------------------------------------

/** Key material's life in the token. */
export interface KeyMaterial {
  /**
   * Generates new key material of `spec` inside the token for `ref`: token objects that are
   * private, sensitive, never extractable, allowed only what the kind needs. Material the token
   * already holds for `ref` is kept instead (so a retry never makes a second object with the same
   * id). Throws KMS.0104 / KMS.0103.
   *
   * `fresh`: `ref`'s key id was made for this creation (a new CMK), so the token cannot hold its
   * material yet and is not searched for it first (a search costs in proportion to the token's
   * objects on some modules, SoftHSM's among them).
   */
  generateKey(ref: MaterialRef, spec?: KeySpec, options?: { readonly fresh?: boolean }): Promise<void>;

  /**
   * Destroys every object of `ref`. Returns false when none existed (already destroyed, by us or by
   * another process sharing the token), so that callers can finish interrupted deletions.
   */
  destroyKey(ref: MaterialRef): Promise<boolean>;

  /** Whether the token holds material for `ref` (a fresh lookup under the token lock, not the cache). */
  hasKey(ref: MaterialRef): Promise<boolean>;

  /** The material references this process's view of the token holds: from start-up, and from every re-read of the token since. */
  listKeys(): MaterialRef[];
}

/** AES-256-GCM under a CMK's material (spec AES_256). */
export interface SymmetricEncryption {
  /** Encrypts with a fresh IV and the given additional data. */
  encrypt(ref: MaterialRef, plaintext: Buffer, aad: Buffer): Promise<SealedData>;

  /** Decrypts. Throws KMS.2201 when the tag does not verify. */
  decrypt(ref: MaterialRef, sealed: SealedData, aad: Buffer): Promise<Buffer>;
}

/** The HSM's random generator. */
export interface RandomSource {
  /** `length` bytes from the HSM's random generator. */
  random(length: number): Promise<Buffer>;
}

// ---- roles of the key kinds to come (declared so that their endpoints add implementations) -----

export type SigningAlgorithm =
  | 'RSASSA_PSS_SHA_256'
  | 'RSASSA_PSS_SHA_384'
  | 'RSASSA_PSS_SHA_512'
  | 'RSASSA_PKCS1_V1_5_SHA_256'
  | 'RSASSA_PKCS1_V1_5_SHA_384'
  | 'RSASSA_PKCS1_V1_5_SHA_512'
  | 'ECDSA_SHA_256'
  | 'ECDSA_SHA_384'
  | 'ECDSA_SHA_512'
  | 'ED25519_SHA_512';

/** Asymmetric signing with a private key that never leaves the token (RSA-PSS, RSA PKCS#1 v1.5, ECDSA, EdDSA). */
export interface Signing {
  /** Signs a digest (or, for EdDSA, the message itself). */
  sign(ref: MaterialRef, algorithm: SigningAlgorithm, message: Buffer): Promise<Buffer>;
  /** Whether `signature` verifies; false, never KMS.2201, for a signature that does not. */
  verify(ref: MaterialRef, algorithm: SigningAlgorithm, message: Buffer, signature: Buffer): Promise<boolean>;
  /** The public key, DER SubjectPublicKeyInfo. */
  publicKey(ref: MaterialRef): Promise<Buffer>;
}

/** RSA-OAEP decryption with a private key in the token (and encryption with its public key). */
export interface AsymmetricEncryption {
  encrypt(ref: MaterialRef, algorithm: 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1', plaintext: Buffer): Promise<Buffer>;
  /** Throws KMS.2201 when the ciphertext does not decrypt. */
  decrypt(ref: MaterialRef, algorithm: 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1', ciphertext: Buffer): Promise<Buffer>;
}

/** ECDH with a private key in the token: the shared secret of a peer's public key. */
export interface KeyAgreement {
  deriveSharedSecret(ref: MaterialRef, peerPublicKey: Buffer): Promise<Buffer>;
}

/** HMAC with a secret key in the token. */
export interface MessageAuthentication {
  generateMac(ref: MaterialRef, algorithm: 'HMAC_SHA_256' | 'HMAC_SHA_384' | 'HMAC_SHA_512', message: Buffer): Promise<Buffer>;
  verifyMac(ref: MaterialRef, algorithm: 'HMAC_SHA_256' | 'HMAC_SHA_384' | 'HMAC_SHA_512', message: Buffer, mac: Buffer): Promise<boolean>;
}

/** Key material brought from outside: unwrapped inside the token, or created from material the token then holds. */
export interface KeyImport {
  /** A wrapping key pair for one import (its public key handed to the client), valid until destroyed. */
  createWrappingKey(ref: MaterialRef): Promise<Buffer>;
  /** Unwraps `wrapped` (RSA-OAEP under the wrapping key of `wrappingRef`) into `ref`'s material. */
  unwrapKey(ref: MaterialRef, spec: KeySpec, wrappingRef: MaterialRef, wrapped: Buffer): Promise<void>;
}

// ---- the whole seam ------------------------------------------------------------------------------

export interface Hsm extends KeyMaterial, SymmetricEncryption, RandomSource {
  /**
   * A cheap call that reaches the device (one byte from C_GenerateRandom, past the random pool) on a
   * pooled session, within the call deadline, for readiness checks: it resolves when the HSM
   * answers, and rejects as every operation does otherwise. Not C_GetSessionInfo: a network HSM's
   * client library may answer that from its own state without asking the device.
   */
  ping(): Promise<void>;

  /** Closes every session and finalises the module. Operations after this throw KMS.0104. */
  close(): Promise<void>;

  /** What the health checks need to know: the sessions, the callers waiting, the last failure. */
  state(): HsmState;
}

export interface HsmState {
  readonly sessions: {
    readonly size: number;
    readonly busy: number;
    readonly free: number;
    /** Sessions whose call hung past its deadline and has not come back yet. */
    readonly abandoned: number;
  };
  /** Callers waiting for a free session. */
  readonly waiters: number;
  /** The last HSM failure: a CKR name or what timed out, and when (ISO 8601). Never a secret. */
  readonly lastError: { readonly cause: string; readonly at: string } | undefined;
  /** Module re-initialisations since start, after a module failure. */
  readonly recoveries: number;
  /** Re-reads of the token since start (a key the database names was not in this process's view). */
  readonly rereads: number;
  /** Whether a failed re-initialisation is backing off (requests get 503 at once until it ends). */
  readonly backingOff: boolean;
}
