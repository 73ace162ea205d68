import type * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import { ckrOf } from '../ckr';
import type { CryptoCallMode } from '../profile-names';

/**
 * The single-part PKCS#11 calls of the asymmetric and MAC roles, on a leased session, through
 * pkcs11js directly (graphene's Sign and Verify copy their input into Node's buffer pool). The
 * *Init call is synchronous; the call that does the work runs inline or on a libuv thread as the
 * module's profile says (`cryptoCalls`), as AES-GCM's do.
 */

/** The most bytes a signature or MAC of ours has: RSA-4096's 512. */
const MAX_SIGNATURE_BYTES = 512;

/**
 * C_SignInit and C_Sign: the signature (or MAC) of `data`. Empty data (a MAC of the empty message)
 * goes through C_SignFinal alone: pkcs11js passes an empty buffer as a NULL pointer, which C_Sign
 * refuses (SoftHSM: CKR_ARGUMENTS_BAD), while a multi-part operation without any part is the MAC
 * of nothing.
 */
export function signOn(session: graphene.Session, mechanism: pkcs11.Mechanism, key: Buffer, data: Buffer, mode: CryptoCallMode): Buffer | Promise<Buffer> {
  const { lib, handle } = session;
  lib.C_SignInit(handle, mechanism, key);
  const out = Buffer.alloc(MAX_SIGNATURE_BYTES);
  if (data.length === 0) return lib.C_SignFinal(handle, out);
  if (mode === 'sync') return lib.C_Sign(handle, data, out);
  return callback<Buffer>((done) => lib.C_Sign(handle, data, out, done));
}

/** The answers of C_Verify that mean "this signature (or MAC) is not the data's": the caller's, not the module's. */
const NOT_VALID: ReadonlySet<number> = new Set([pkcs11.CKR_SIGNATURE_INVALID, pkcs11.CKR_SIGNATURE_LEN_RANGE]);

/**
 * C_VerifyInit and C_Verify: whether `signature` is `data`'s (false, not an error, when it is not;
 * the failed call ended the operation). An empty signature is no signature of ours: false without
 * a call (as a NULL pointer, C_Verify would refuse it with CKR_ARGUMENTS_BAD). Empty data goes
 * through C_VerifyFinal alone, as in {@link signOn}.
 */
export function verifyOn(session: graphene.Session, mechanism: pkcs11.Mechanism, key: Buffer, data: Buffer, signature: Buffer, mode: CryptoCallMode): boolean | Promise<boolean> {
  if (signature.length === 0) return false;
  const { lib, handle } = session;
  lib.C_VerifyInit(handle, mechanism, key);
  const invalid = (error: unknown): boolean => {
    const code = ckrOf(error);
    if (code !== undefined && NOT_VALID.has(code)) return false;
    throw error;
  };
  try {
    if (data.length === 0) return lib.C_VerifyFinal(handle, signature);
    if (mode !== 'sync') return callback<boolean>((done) => lib.C_Verify(handle, data, signature, done)).catch(invalid);
    return lib.C_Verify(handle, data, signature);
  } catch (error) {
    return invalid(error);
  }
}

/** C_DecryptInit and C_Decrypt into a buffer of `room` bytes. */
export function decryptOn(session: graphene.Session, mechanism: pkcs11.Mechanism, key: Buffer, data: Buffer, room: number, mode: CryptoCallMode): Buffer | Promise<Buffer> {
  const { lib, handle } = session;
  lib.C_DecryptInit(handle, mechanism, key);
  const out = Buffer.alloc(room);
  if (mode === 'sync') return lib.C_Decrypt(handle, data, out);
  return callback<Buffer>((done) => lib.C_Decrypt(handle, data, out, done));
}

/** pkcs11js's callback form as a promise (the call runs on a libuv worker thread). */
export function callback<T>(start: (done: (error: Error | null, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    start((error, value) => (error ? reject(error) : resolve(value)));
  });
}
