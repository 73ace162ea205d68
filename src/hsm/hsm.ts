/**
 * The HSM seam: everything the KMS asks of the hardware. Key material never crosses it; only key
 * references, plaintext to protect and ciphertext to open do.
 *
 * Error contract (every method): failures are {@link KmsError}s.
 * - KMS.0207 the referenced key material does not exist in the token (after a fresh lookup, and a
 *   re-read of the whole token when that misses: a process's view can lag behind other processes
 *   that share the token).
 * - KMS.2201 the ciphertext or its additional data failed authentication (decrypt only).
 * - KMS.0104 the HSM is unavailable or out of sessions/memory after one recovery attempt, the
 *   operation passed its deadline (waiting for a session or a recovery, or inside an asynchronous
 *   call), too many callers wait for a session, or a failed re-initialisation is backing off (503).
 * - KMS.0103 any other HSM failure (500). The PKCS#11 cause is attached for the log, never for clients.
 */

/** One version of one CMK's key material, as stored in the token. */
export interface MaterialRef {
  /** The CMK's id (a lower-case UUID). */
  readonly keyId: string;
  /** The key material version, starting at 0; rotation adds versions. */
  readonly version: number;
}

export interface SealedData {
  /** The 96-bit IV: fresh bytes from the HSM's random generator for every call, never reused. */
  readonly iv: Buffer;
  /** AES-GCM ciphertext followed by the 128-bit tag. */
  readonly ciphertext: Buffer;
}

export interface Hsm {
  /**
   * Generates a new AES-256 key inside the token for `ref`: a token object that is private,
   * sensitive, never extractable, usable only to encrypt and decrypt. Material the token already
   * holds for `ref` is kept instead (so a retry never makes a second object with the same id).
   * Throws KMS.0104 / KMS.0103.
   */
  generateKey(ref: MaterialRef): Promise<void>;

  /**
   * Destroys the key material of `ref`. Returns false when it did not exist (already destroyed, by
   * us or by another process sharing the token), so that callers can finish interrupted deletions.
   */
  destroyKey(ref: MaterialRef): Promise<boolean>;

  /** Whether the token holds material for `ref` (a fresh lookup under the token lock, not the cache). */
  hasKey(ref: MaterialRef): Promise<boolean>;

  /** The material references found in the token at start-up (and after a module re-initialisation). */
  listKeys(): MaterialRef[];

  /** `length` bytes from the HSM's random generator. */
  random(length: number): Promise<Buffer>;

  /** AES-256-GCM encryption under `ref` with a fresh IV and the given additional data. */
  encrypt(ref: MaterialRef, plaintext: Buffer, aad: Buffer): Promise<SealedData>;

  /** AES-256-GCM decryption under `ref`. Throws KMS.2201 when the tag does not verify. */
  decrypt(ref: MaterialRef, sealed: SealedData, aad: Buffer): Promise<Buffer>;

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
  /** Module re-initialisations since start (recoveries and token re-reads). */
  readonly reinitialisations: number;
  /** Whether a failed re-initialisation is backing off (requests get 503 at once until it ends). */
  readonly backingOff: boolean;
}
