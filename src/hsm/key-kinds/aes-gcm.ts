import * as graphene from 'graphene-pk11';
import { KmsError } from '../../errors';
import { ckrOf } from '../ckr';
import type { MaterialRef, SealedData, SymmetricEncryption } from '../hsm';
import type { KeyObjects } from '../key-objects';
import type { Pkcs11Profile } from '../profiles';

export const IV_BYTES = 12;
const TAG_BYTES = 16;
const TAG_BITS = TAG_BYTES * 8;

/**
 * The GCM parameters: the CK_GCM_PARAMS with ulIvBits (what the v2.40 errata header and v3.0
 * define, and SoftHSM, NSS and Thales Luna read). It is the only layout pkcs11js 2.1.7 builds: its
 * CK_PARAMS_AES_GCM makes the same structure with ulIvBits left unset (uninitialised memory), so
 * graphene's AesGcmParams is never used, and a module that wants the 40-byte structure of the
 * original v2.40 text cannot be served (measured through the shim, bench/shim). `iv` is passed as
 * it is (pkcs11js hands the module its memory): a module that makes the IV writes it there.
 */
function gcmParams(iv: Buffer, aad: Buffer): graphene.AesGcm240Params {
  return new graphene.AesGcm240Params(iv, aad, TAG_BITS);
}

/**
 * AES-256-GCM with a CMK's material: the {@link SymmetricEncryption} role, through graphene's
 * Cipher and Decipher. Who makes the IV and which answer of C_Decrypt means a bad tag are the
 * module profile's.
 */
export class AesGcm implements SymmetricEncryption {
  constructor(
    private readonly keys: KeyObjects,
    private readonly profile: Pkcs11Profile,
    /** A fresh IV: at once from the random pool's block in hand, or a promise when it needs refilling. */
    private readonly randomIv: () => Buffer | Promise<Buffer>,
  ) {}

  encrypt(ref: MaterialRef, plaintext: Buffer, aad: Buffer): Promise<SealedData> {
    if (this.profile.gcmIv !== 'caller') return this.encryptWith(ref, plaintext, aad, undefined);
    const iv = this.randomIv();
    return iv instanceof Promise ? iv.then((fresh) => this.encryptWith(ref, plaintext, aad, fresh)) : this.encryptWith(ref, plaintext, aad, iv);
  }

  decrypt(ref: MaterialRef, sealed: SealedData, aad: Buffer): Promise<Buffer> {
    if (sealed.iv.length !== IV_BYTES || sealed.ciphertext.length < TAG_BYTES) return Promise.reject(new KmsError('KMS.2201'));
    return this.keys.withKey(ref, 'decrypt', (session, key) => decryptOn(session, key, this.profile, sealed, aad));
  }

  private encryptWith(ref: MaterialRef, plaintext: Buffer, aad: Buffer, callerIv: Buffer | undefined): Promise<SealedData> {
    return this.keys.withKey(ref, 'encrypt', (session, key) => encryptOn(session, key, this.profile, plaintext, aad, callerIv));
  }
}

/**
 * One encryption on `session`. With a caller IV, that IV; otherwise the module makes the IV
 * (FIPS-mode HSMs refuse one from the caller) and either writes it into the zeroed IV buffer during
 * C_EncryptInit or puts it in front of the ciphertext. The buffer is fresh for every attempt, so a
 * retry never sends the module an IV it wrote before.
 */
export function encryptOn(
  session: graphene.Session,
  key: graphene.SecretKey,
  profile: Pkcs11Profile,
  plaintext: Buffer,
  aad: Buffer,
  callerIv: Buffer | undefined,
): SealedData | Promise<SealedData> {
  const iv = callerIv ?? Buffer.alloc(IV_BYTES);
  session.createCipher({ name: 'AES_GCM', params: gcmParams(iv, aad) }, key);
  if (profile.gcmIv === 'token-params' && iv.every((byte) => byte === 0)) {
    // An all-zero IV is what the module got: it made none. Encrypting on would use one IV twice.
    throw new KmsError('KMS.0103', { cause: new Error('the module wrote no GCM IV into the parameters (KMS_PKCS11_GCM_IV=token-params)') });
  }
  const prefix = profile.gcmIv === 'token-output' ? IV_BYTES : 0;
  const out = Buffer.alloc(prefix + plaintext.length + TAG_BYTES);
  // pkcs11js directly, after graphene's createCipher made the C_EncryptInit: graphene's Cipher.once
  // copies its input (Buffer.from) into Node's buffer pool and never wipes it, which would leave
  // every data key's plaintext in process memory.
  const { lib, handle } = session;
  if (profile.cryptoCalls === 'sync') return sealedFrom(lib.C_Encrypt(handle, plaintext, out), iv, prefix, out.length);
  return callback<Buffer>((done) => lib.C_Encrypt(handle, plaintext, out, done)).then((result) => sealedFrom(result, iv, prefix, out.length));
}

/** The IV and ciphertext of C_Encrypt's answer: the IV it was given, or (token-output) the one in front of the ciphertext. */
function sealedFrom(result: Buffer, iv: Buffer, prefix: number, expected: number): SealedData {
  if (prefix === 0) return { iv, ciphertext: result };
  if (result.length !== expected) {
    throw new KmsError('KMS.0103', { cause: new Error(`the module returned ${result.length} bytes, not IV, ciphertext and tag (KMS_PKCS11_GCM_IV=token-output)`) });
  }
  return { iv: Buffer.from(result.subarray(0, IV_BYTES)), ciphertext: result.subarray(IV_BYTES) };
}

/** One decryption on `session`. Only C_Decrypt's answer can mean "the tag did not verify", and what it answers then is the profile's. */
export function decryptOn(session: graphene.Session, key: graphene.SecretKey, profile: Pkcs11Profile, sealed: SealedData, aad: Buffer): Buffer | Promise<Buffer> {
  const decipher = session.createDecipher({ name: 'AES_GCM', params: gcmParams(sealed.iv, aad) }, key);
  // SoftHSM wants room for the whole input (tag included) before it strips the tag.
  const out = Buffer.alloc(sealed.ciphertext.length);
  if (profile.cryptoCalls !== 'sync') {
    return callback<Buffer>((done) => decipher.once(sealed.ciphertext, out, done)).catch((error: unknown) => {
      throw badTagOr(error, profile);
    });
  }
  try {
    return decipher.once(sealed.ciphertext, out);
  } catch (error) {
    throw badTagOr(error, profile);
  }
}

/** KMS.2201 when C_Decrypt's error is the profile's answer to a bad tag (the failed call ended the operation, so the session is fine); else the error itself. */
function badTagOr(error: unknown, profile: Pkcs11Profile): unknown {
  const code = ckrOf(error);
  return code !== undefined && profile.badTagCodes.has(code) ? new KmsError('KMS.2201', { cause: error }) : error;
}

/** graphene's callback form as a promise (the call runs on a libuv worker thread). */
function callback<T>(start: (done: (error: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((error, value) => (error ? reject(error) : resolve(value)));
  });
}
