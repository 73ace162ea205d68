import { hash, timingSafeEqual } from 'node:crypto';
import { KmsError } from '../errors';

/**
 * The ciphertext blob: the one codec for the `cipher_text` a client stores beside its data.
 *
 * It keeps the outer frame of Huawei KMS's own blobs (format version, length, payload, ASCII key
 * id, 4-byte key material version, SHA-256 trailer) and defines its own payload:
 *
 * | offset      | bytes | field                                                              |
 * |-------------|-------|--------------------------------------------------------------------|
 * | 0           | 2     | format version, u16 little-endian: 0x4B01 ("K", 1) for this layout  |
 * | 2           | 2     | E = offset where the key id ends, u16 little-endian                |
 * | 4           | 12    | AES-GCM IV (from the HSM's random generator)                       |
 * | 16          | n     | AES-256-GCM ciphertext of the data key (n = data key length)       |
 * | 16 + n      | 16    | GCM tag                                                            |
 * | E - 36      | 36    | CMK id, ASCII                                                      |
 * | E           | 4     | key material version, u32 little-endian                            |
 * | E + 4       | 32    | SHA-256 of bytes 0 .. E+3                                          |
 *
 * The GCM additional data binds the key id, material version, project and the caller's context
 * (see binding.ts), so the trailer is only a cheap corruption check; authenticity comes from GCM.
 * Any blob that does not decode is the caller's bad input: KMS.2201.
 */

export const BLOB_FORMAT_V1 = 0x4b01;
const HEADER_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_BYTES = 36;
const VERSION_BYTES = 4;
const DIGEST_BYTES = 32;
const FIXED_BYTES = HEADER_BYTES + IV_BYTES + TAG_BYTES + KEY_ID_BYTES + VERSION_BYTES + DIGEST_BYTES;
const KEY_ID_PATTERN = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;

export interface Blob {
  readonly keyId: string;
  readonly materialVersion: number;
  readonly iv: Buffer;
  /** GCM ciphertext followed by its tag. */
  readonly ciphertext: Buffer;
}

/** Length in bytes of the data key a blob carries. */
export function dataKeyLength(blob: Blob): number {
  return blob.ciphertext.length - TAG_BYTES;
}

export function encodeBlob(blob: Blob): Buffer {
  if (blob.iv.length !== IV_BYTES) throw new Error('IV must be 12 bytes');
  if (blob.ciphertext.length < TAG_BYTES) throw new Error('ciphertext must carry a GCM tag');
  if (!KEY_ID_PATTERN.test(blob.keyId)) throw new Error('key id must be a 36-character id');
  const keyIdEnd = HEADER_BYTES + IV_BYTES + blob.ciphertext.length + KEY_ID_BYTES;
  if (keyIdEnd > 0xffff) throw new Error('data key too long for the blob format');

  const out = Buffer.alloc(keyIdEnd + VERSION_BYTES + DIGEST_BYTES);
  out.writeUInt16LE(BLOB_FORMAT_V1, 0);
  out.writeUInt16LE(keyIdEnd, 2);
  blob.iv.copy(out, HEADER_BYTES);
  blob.ciphertext.copy(out, HEADER_BYTES + IV_BYTES);
  out.write(blob.keyId, keyIdEnd - KEY_ID_BYTES, 'ascii');
  out.writeUInt32LE(blob.materialVersion, keyIdEnd);
  sha256(out.subarray(0, keyIdEnd + VERSION_BYTES)).copy(out, keyIdEnd + VERSION_BYTES);
  return out;
}

/** Decodes and checks a blob's frame. Throws KMS.2201 for anything that is not a well-formed blob. */
export function decodeBlob(bytes: Buffer): Blob {
  const invalid = (why: string): KmsError => new KmsError('KMS.2201', { cause: new Error(why) });
  if (bytes.length < FIXED_BYTES) throw invalid('too short');
  if (bytes.readUInt16LE(0) !== BLOB_FORMAT_V1) throw invalid('unknown format version');
  const keyIdEnd = bytes.readUInt16LE(2);
  if (keyIdEnd + VERSION_BYTES + DIGEST_BYTES !== bytes.length) throw invalid('length field does not match');

  const digestAt = keyIdEnd + VERSION_BYTES;
  if (!timingSafeEqual(sha256(bytes.subarray(0, digestAt)), bytes.subarray(digestAt))) throw invalid('checksum');

  const keyId = bytes.toString('ascii', keyIdEnd - KEY_ID_BYTES, keyIdEnd);
  if (!KEY_ID_PATTERN.test(keyId)) throw invalid('key id');
  return {
    keyId,
    materialVersion: bytes.readUInt32LE(keyIdEnd),
    iv: Buffer.from(bytes.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES)),
    ciphertext: Buffer.from(bytes.subarray(HEADER_BYTES + IV_BYTES, keyIdEnd - KEY_ID_BYTES)),
  };
}

function sha256(data: Buffer): Buffer {
  return hash('sha256', data, 'buffer');
}
