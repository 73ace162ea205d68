/**
 * The HSM seam: everything the KMS asks of the hardware, as roles. Key material never crosses it;
 * only key references, data to protect and results do. Each key kind the API offers is a
 * file in src/hsm/key-kinds/ (its object classes, mechanisms and templates) served by the role
 * implementations in src/hsm/roles/, so a new key kind is one file and one line in the kinds' list.
 * Import (unwrap) is the keyImport role (roles/key-import.ts).
 *
 * Error contract (every method of every role): failures are {@link KmsError}s, never raw PKCS#11
 * errors.
 * - KMS.0207 the referenced key material does not exist in the token (after a fresh lookup, and a
 *   re-read of the whole token when that misses: a process's view can lag behind other processes
 *   that share the token).
 * - KMS.2201 the ciphertext or its additional data failed authentication (decryption only; only
 *   from the decryption call itself, as the module's profile says).
 * - The caller's errors a role names beside it (a digest of the wrong length, a peer key that is
 *   no point of the curve, ...): 400s.
 * - A failed signature or MAC check is `false`, not an error.
 * - KMS.0104 the HSM is unavailable or out of sessions/memory after one recovery attempt, the
 *   operation passed its deadline (waiting for a session, the token lock or a recovery, or inside an
 *   asynchronous call), too many callers wait for a session, or a failed re-initialisation is
 *   backing off (503).
 * - KMS.0103 any other HSM failure (500). The PKCS#11 cause is attached for the log, never for clients.
 */

import type { KeySpec } from './key-kinds';

/** One version of one CMK's key material, as stored in the token. */
export interface MaterialRef {
  /** The CMK's id (a lower-case UUID). */
  readonly keyId: string;
  /** The key material version, starting at 0; rotation adds versions. */
  readonly version: number;
}

/** The key kinds the API names (`key_spec`): each is a file in key-kinds/, and this is the specs of their list, key-kinds/index.ts. */
export type { KeySpec };

/**
 * What a key's material is allowed to do (`key_usage`). The private key's CKA_SIGN, CKA_DECRYPT
 * and CKA_DERIVE (and the public key's CKA_VERIFY and CKA_ENCRYPT) follow it and nothing else: an
 * RSA key made to sign cannot decrypt, in the token.
 */
export type KeyUsage = 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY' | 'GENERATE_VERIFY_MAC' | 'KEY_AGREEMENT';

export interface SealedData {
  /** The 96-bit IV: fresh for every call (made by the service from the HSM's generator, or by the HSM itself), never reused. */
  readonly iv: Buffer;
  /** AES-GCM ciphertext followed by the 128-bit tag. */
  readonly ciphertext: Buffer;
}

// ---- roles ----------------------------------------------------------------------------------------

/** Key material's life in the token, for every key kind. */
export interface KeyMaterial {
  /**
   * Generates new key material of `spec` inside the token for `ref`: token objects (a secret key,
   * or a private and a public key) whose private and secret parts are private, sensitive and never
   * extractable, allowed only what `usage` needs (default: the kind's default usage). Material the
   * token already holds for `ref` is kept instead (so a retry never makes a second object with the
   * same id). Throws KMS.0104 / KMS.0103, and KMS.0103 for a spec or usage the module cannot do
   * (callers ask {@link Hsm.supports} first and refuse the request with a 400).
   *
   * `fresh`: `ref`'s key id was made for this creation (a new CMK), so the token cannot hold its
   * material yet and is not searched for it first (a search costs in proportion to the token's
   * objects on some modules, SoftHSM's among them).
   */
  generateKey(ref: MaterialRef, spec?: KeySpec, options?: { readonly fresh?: boolean; readonly usage?: KeyUsage }): Promise<void>;

  /**
   * Destroys every object of `ref` (of every class). Returns false when none existed (already
   * destroyed, by us or by another process sharing the token), so that callers can finish
   * interrupted deletions.
   */
  destroyKey(ref: MaterialRef): Promise<boolean>;

  /** Whether the token holds material for `ref` (a fresh lookup under the token lock, not the cache). */
  hasKey(ref: MaterialRef): Promise<boolean>;

  /** The material references this process's view of the token holds (every object class): from start-up, and from every re-read of the token since. */
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
  | 'EDDSA';

/** What is signed: a digest of the algorithm's hash (its length must match), or the message itself, which the service or the HSM hashes. */
export type MessageType = 'DIGEST' | 'RAW';

export interface SignatureInput {
  /** The key's spec, as the store records it (the curve's size for ECDSA's encoding, and which algorithms fit). */
  readonly spec: KeySpec;
  readonly algorithm: SigningAlgorithm;
  readonly messageType: MessageType;
  readonly message: Buffer;
}

/**
 * Asymmetric signing with a private key that never leaves the token (RSA-PSS with a salt as long
 * as the hash, RSA PKCS#1 v1.5, ECDSA, pure EdDSA). Where the module lacks the combined mechanism
 * (CKM_ECDSA_SHA256 on SoftHSM 2.6.1), the service hashes and the token signs the digest (a
 * capability read from the mechanism list at start-up, {@link HsmCapabilities}).
 *
 * Throws, besides the seam's contract: KMS.0332 for an algorithm that does not fit the spec (or a
 * module that cannot do it), KMS.0329 for a DIGEST whose length is not the hash's, KMS.0308 for
 * EdDSA over a DIGEST (pure Ed25519 signs the message) or over an empty message.
 */
export interface Signing {
  /** The signature: RSA's as PKCS#1 defines it, ECDSA's DER (a SEQUENCE of r and s, as X.509 and Huawei's API have it; PKCS#11 gives r‖s), EdDSA's 64 bytes. */
  sign(ref: MaterialRef, input: SignatureInput): Promise<Buffer>;
  /** Whether `signature` verifies, in the token with the public key; false, never an error, for one that does not (a malformed one included). */
  verify(ref: MaterialRef, input: SignatureInput, signature: Buffer): Promise<boolean>;
}

export type AsymmetricEncryptionAlgorithm = 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1';

/**
 * RSA-OAEP decryption with a private key in the token. Encryption needs no HSM: it is the public
 * key's ({@link KeyPairs.publicKey}), done by whoever holds it. Throws KMS.0311 when the
 * ciphertext does not decrypt under the key, KMS.0308 for an algorithm the module cannot do
 * ({@link Hsm.supportsAlgorithm}: SoftHSM 2.6 has no OAEP with SHA-256).
 */
export interface AsymmetricDecryption {
  decrypt(ref: MaterialRef, algorithm: AsymmetricEncryptionAlgorithm, ciphertext: Buffer): Promise<Buffer>;
}

/**
 * ECDH with a private key in the token (CKM_ECDH1_DERIVE, no KDF): the shared secret (the x
 * coordinate, as Node's ECDH computes it) of a peer's public key, DER SubjectPublicKeyInfo. The
 * secret is made as a session object that may be read, read once, and destroyed. Throws KMS.0308
 * for a peer key that does not parse, is on another curve, or is not a point of it.
 */
export interface KeyAgreement {
  deriveSharedSecret(ref: MaterialRef, spec: KeySpec, peerPublicKey: Buffer): Promise<Buffer>;
}

export type MacAlgorithm = 'HMAC_SHA_256' | 'HMAC_SHA_384' | 'HMAC_SHA_512';

/** HMAC with a secret key in the token; a MAC is checked by making it again in the token and comparing in the service, in constant time. */
export interface MessageAuthentication {
  generateMac(ref: MaterialRef, algorithm: MacAlgorithm, message: Buffer): Promise<Buffer>;
  /** Whether `mac` is the message's; false, never an error, for one that is not. */
  verifyMac(ref: MaterialRef, algorithm: MacAlgorithm, message: Buffer, mac: Buffer): Promise<boolean>;
}

/** The public half of key-pair material (generation is {@link KeyMaterial.generateKey}'s, for every kind). */
export interface KeyPairs {
  /** The public key as DER SubjectPublicKeyInfo, built from the public key object's attributes (C_GetAttributeValue). */
  publicKey(ref: MaterialRef, spec: KeySpec): Promise<Buffer>;
}

/** How key material to import is wrapped (RSA-OAEP, MGF1 of the same hash, an empty label), by its API name. */
export type WrappingAlgorithm = 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1';

/**
 * Key material brought from outside (BYOK): unwrapped inside the token, so that its plaintext never
 * exists outside the HSM. Each key being imported has at most one wrapping key pair (RSA-2048,
 * whose private key may unwrap and nothing else), named by the key's id: a new one replaces the
 * last, so what the token holds for imports is bounded by the keys.
 *
 * Throws, besides the seam's contract: KMS.0207 when the key has no wrapping key (never made, or
 * destroyed); KMS.0308 for a wrapping algorithm the module cannot do or material that does not
 * unwrap under the wrapping key with the algorithm given (another hash, another key, garbage);
 * KMS.2604 for material that is not 32 bytes (AES-256); KMS.2606 for material whose fingerprint is
 * not the one expected (a re-import of other material).
 */
export interface KeyImport {
  /** The algorithms this module can unwrap with (probed at start-up: C_UnwrapKey may take hashes C_Decrypt does not, and the reverse). */
  readonly wrappingAlgorithms: ReadonlySet<WrappingAlgorithm>;
  /** Makes the wrapping key pair of `keyId`'s import, replacing the one it had: its public key as DER SubjectPublicKeyInfo. */
  createWrappingKey(keyId: string): Promise<Buffer>;
  /** The public key (DER SubjectPublicKeyInfo) of `keyId`'s wrapping key. */
  wrappingPublicKey(keyId: string): Promise<Buffer>;
  /** Destroys `keyId`'s wrapping key pair; false when it had none. */
  destroyWrappingKey(keyId: string): Promise<boolean>;
  /**
   * Unwraps `wrapped` (RSA-OAEP with `algorithm` under `keyId`'s wrapping key) into `ref`'s
   * material of `spec` (AES_256 only): a token object as generated material is (sensitive, never
   * extractable, encrypt and decrypt only, the same CKA_ID and CKA_LABEL), replacing whatever the
   * token held for `ref` (what an interrupted import left). The material's length and fingerprint
   * are checked on a session object first, so that nothing is written to the token for material
   * that is refused. Returns the fingerprint: AES-ECB of a zero block under the material (the
   * classic key check value), made in the token; never the material.
   */
  unwrapKey(ref: MaterialRef, spec: KeySpec, keyId: string, algorithm: WrappingAlgorithm, wrapped: Buffer, expectedFingerprint?: Buffer): Promise<Buffer>;
  /** The key pair specs whose private keys this module can import (found at start-up by importing one; empty: none). */
  readonly privateKeySpecs: ReadonlySet<KeySpec>;
  /**
   * Unwraps `wrappedKey` (a temporary AES-128 or AES-256 key, RSA-OAEP with `algorithm` under
   * `keyId`'s wrapping key; another length KMS.2610) and with it `wrappedPrivateKey` (DER PKCS#8,
   * AES key wrap with padding, RFC 5649) into `ref`'s key pair of `spec` for `usage` (see
   * {@link PrivateKeyImport}): the private
   * key a token object as generated ones are (sensitive, never extractable, the usage's uses only),
   * its public key a token object made from it, both with ref's CKA_ID and CKA_LABEL, replacing
   * what the token held for `ref`. The private key is checked on a session object first (a key
   * that does not unwrap, or is not of `spec`: KMS.2609), so that nothing is written to the token
   * for a key that is refused. Returns the fingerprint: SHA-256 of the public key's DER
   * SubjectPublicKeyInfo.
   */
  unwrapPrivateKey(request: PrivateKeyImport): Promise<Buffer>;
}

/** What {@link KeyImport.unwrapPrivateKey} imports, and into which key. */
export interface PrivateKeyImport {
  /** The key pair's material: its objects' CKA_ID and CKA_LABEL. */
  readonly ref: MaterialRef;
  readonly spec: KeySpec;
  readonly usage: KeyUsage;
  /** The key whose wrapping key unwraps the temporary key. */
  readonly keyId: string;
  readonly algorithm: WrappingAlgorithm;
  /** The temporary AES key, RSA-OAEP under the wrapping key (encrypted_key_material). */
  readonly wrappedKey: Buffer;
  /** The private key, DER PKCS#8, RFC 5649 under the temporary key (encrypted_privatekey). */
  readonly wrappedPrivateKey: Buffer;
  /** The fingerprint of the key imported before, which this one must have (KMS.2606 otherwise). */
  readonly expectedFingerprint?: Buffer;
}

/** The material version a wrapping key's objects carry in their CKA_ID and CKA_LABEL: the largest, never a rotation's. */
export const WRAPPING_KEY_VERSION = 0xffffffff;

/** Whether `ref` names a wrapping key pair (not a key's material). */
export function isWrappingKey(ref: MaterialRef): boolean {
  return ref.version === WRAPPING_KEY_VERSION;
}

/** Every algorithm a role takes, by its API name. */
export type HsmAlgorithm = SigningAlgorithm | AsymmetricEncryptionAlgorithm | MacAlgorithm;

/** What this module can do, read once at start-up from C_GetMechanismList / C_GetMechanismInfo (and a probe per curve). */
export interface HsmCapabilities {
  /** The usages each spec's material can serve on this module; a spec it cannot generate is absent. */
  readonly specs: ReadonlyMap<KeySpec, ReadonlySet<KeyUsage>>;
  /** Why each spec or usage the module cannot do is missing (e.g. "SECP256K1: curve not supported"), for the log. */
  readonly missing: readonly string[];
  /**
   * The algorithms this module can do, for the specs that use them: a module's mechanism list
   * cannot say everything (SoftHSM 2.6 offers CKM_RSA_PKCS_OAEP but takes SHA-1 only in its
   * parameters), so a usage is supported when one of its algorithms is, and each request's
   * algorithm is checked against this set.
   */
  readonly algorithms: ReadonlySet<HsmAlgorithm>;
  /** The signing algorithms the service hashes for (the module lacks the combined mechanism; the token signs the digest). */
  readonly hashedInService: ReadonlySet<SigningAlgorithm>;
  /** The wrapping algorithms key material can be imported with (empty: no import; see {@link KeyImport}). */
  readonly wrappingAlgorithms: ReadonlySet<WrappingAlgorithm>;
  /** The key pair specs whose private keys can be imported (see {@link KeyImport.privateKeySpecs}). */
  readonly privateKeySpecs: ReadonlySet<KeySpec>;
}

// ---- the whole seam ------------------------------------------------------------------------------

/**
 * The HSM as role objects, one per family of operations (so that roles with methods of the same
 * name, symmetric and asymmetric decryption, do not collide), beside the material's life cycle.
 */
export interface Hsm extends KeyMaterial, RandomSource {
  readonly symmetric: SymmetricEncryption;
  readonly signing: Signing;
  readonly asymmetricDecryption: AsymmetricDecryption;
  readonly keyAgreement: KeyAgreement;
  readonly mac: MessageAuthentication;
  readonly keyPairs: KeyPairs;
  /** Undefined when the module cannot import (no RSA-OAEP unwrap with a hash the API names, or no AES-ECB for the fingerprint). */
  readonly keyImport: KeyImport | undefined;

  /** Whether this module can generate `spec` material for `usage` (create-key refuses otherwise, with a 400 naming the spec). */
  supports(spec: KeySpec, usage: KeyUsage): boolean;

  /** Whether this module can do `algorithm` (a request naming one it cannot is refused with a 400 naming it; the roles refuse it too, KMS.0308). */
  supportsAlgorithm(algorithm: HsmAlgorithm): boolean;

  /** What the module can do, as read at start-up. */
  readonly capabilities: HsmCapabilities;

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
