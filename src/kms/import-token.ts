import { createHash } from 'node:crypto';
import { KmsError } from '../errors';
import type { Hsm, WrappingAlgorithm } from '../hsm/hsm';
import { IMPORT_TOKEN_KEY } from '../hsm/system-keys';
import { strictBase64 } from './strict-base64';

/**
 * The import token get-parameters-for-import hands out and import-key-material takes back: what
 * it binds (the key, the wrapping key pair by its public key's SHA-256, the wrapping algorithm,
 * the expiry), sealed with AES-256-GCM under a system key of the token (IMPORT_TOKEN_KEY), so that
 * only the HSM could have made it: a token changed in any bit, made for another key, or by another
 * service's HSM does not open. It holds no secret (the wrapping key's private half never leaves
 * the HSM), and is never logged nor audited all the same.
 *
 * Layout: version (1 byte) ‖ GCM IV (12) ‖ ciphertext of the fields, zero-padded to 128 bytes, and
 * its tag (16): 157 bytes, 212 base64 characters, within the SDK's 200 to 6144.
 */
const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const PLAINTEXT_BYTES = 128;
const TOKEN_BYTES = 1 + IV_BYTES + PLAINTEXT_BYTES + TAG_BYTES;
/** The additional data of every token's sealing: a token is never taken for any other sealed thing of the service. */
const AAD = Buffer.from('kms/import-token/v1');

const ALGORITHM_CODES: readonly WrappingAlgorithm[] = ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'];

export interface ImportToken {
  readonly keyId: string;
  /** SHA-256 of the wrapping key pair's public key (DER SubjectPublicKeyInfo). */
  readonly wrappingKeyHash: Buffer;
  readonly algorithm: WrappingAlgorithm;
  /** Seconds since the epoch, as the API's expiration_time. */
  readonly expiresAt: number;
}

/** SHA-256 of a wrapping key's DER SubjectPublicKeyInfo: how a token names its wrapping key. */
export function wrappingKeyHash(publicKey: Buffer): Buffer {
  return createHash('sha256').update(publicKey).digest();
}

/** The token, base64, sealed in the HSM. */
export async function sealImportToken(hsm: Hsm, token: ImportToken): Promise<string> {
  const fields = Buffer.alloc(PLAINTEXT_BYTES);
  Buffer.from(token.keyId.replace(/-/g, ''), 'hex').copy(fields, 0);
  token.wrappingKeyHash.copy(fields, 16);
  fields.writeUInt8(ALGORITHM_CODES.indexOf(token.algorithm), 48);
  fields.writeBigUInt64BE(BigInt(token.expiresAt), 49);
  const sealed = await hsm.symmetric.encrypt(IMPORT_TOKEN_KEY, fields, AAD);
  return Buffer.concat([Buffer.from([VERSION]), sealed.iv, sealed.ciphertext]).toString('base64');
}

/**
 * The token's fields, once the HSM has checked its seal: KMS.2605 for one that is not base64 of a
 * token of ours, or whose seal does not verify (changed, or made elsewhere). Whose key it names and
 * whether it expired are the caller's to check.
 */
export async function openImportToken(hsm: Hsm, text: string): Promise<ImportToken> {
  const bytes = strictBase64(text);
  if (bytes === undefined || bytes.length !== TOKEN_BYTES || bytes[0] !== VERSION) throw new KmsError('KMS.2605');
  let fields: Buffer;
  try {
    fields = await hsm.symmetric.decrypt(IMPORT_TOKEN_KEY, { iv: bytes.subarray(1, 1 + IV_BYTES), ciphertext: bytes.subarray(1 + IV_BYTES) }, AAD);
  } catch (error) {
    if (error instanceof KmsError && error.code === 'KMS.2201') throw new KmsError('KMS.2605');
    throw error;
  }
  const algorithm = ALGORITHM_CODES[fields.readUInt8(48)];
  // Sealed by this service: anything else is a defect, not the caller's.
  if (fields.length !== PLAINTEXT_BYTES || algorithm === undefined) throw new KmsError('KMS.0103', { cause: new Error('an import token sealed by this service does not parse') });
  const hex = fields.subarray(0, 16).toString('hex');
  return {
    keyId: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
    wrappingKeyHash: Buffer.from(fields.subarray(16, 48)),
    algorithm,
    expiresAt: Number(fields.readBigUInt64BE(49)),
  };
}
