import { hash, timingSafeEqual } from 'node:crypto';
import { KmsError } from '../errors';

/**
 * The outer frame every ciphertext blob of this service has: the one of Huawei KMS's own blobs
 * (format version, length, payload, ASCII key id, 4-byte key material version, SHA-256 trailer)
 * around a payload of our own, the HSM's AES-256-GCM output:
 *
 * | offset      | bytes | field                                                              |
 * |-------------|-------|--------------------------------------------------------------------|
 * | 0           | 2     | format version, u16 little-endian: says which kind of blob it is   |
 * | 2           | 2     | E = offset where the key id ends, u16 little-endian                |
 * | 4           | 12    | AES-GCM IV (from the HSM's random generator)                       |
 * | 16          | n     | AES-256-GCM ciphertext (n = plaintext length)                      |
 * | 16 + n      | 16    | GCM tag                                                            |
 * | E - 36      | 36    | CMK id, ASCII                                                      |
 * | E           | 4     | key material version, u32 little-endian                            |
 * | E + 4       | 32    | SHA-256 of bytes 0 .. E+3                                          |
 *
 * Each kind of blob has its own codec (blob-codec.ts for data keys, data-blob-codec.ts for
 * encrypt-data) with its own format version; the frame is theirs to share. The GCM additional
 * data binds the kind, key id, material version, project and the caller's context (binding.ts),
 * so the trailer is only a cheap corruption check; authenticity comes from GCM. Any blob that does
 * not decode is the caller's bad input: KMS.2201.
 */

const HEADER_BYTES = 4;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
const KEY_ID_BYTES = 36;
const VERSION_BYTES = 4;
const DIGEST_BYTES = 32;
/** Bytes of a blob besides its ciphertext: a blob of n plaintext bytes has n + FRAME_BYTES. */
export const FRAME_BYTES = HEADER_BYTES + IV_BYTES + TAG_BYTES + KEY_ID_BYTES + VERSION_BYTES + DIGEST_BYTES;
const KEY_ID_PATTERN = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;

export interface Blob {
  readonly keyId: string;
  readonly materialVersion: number;
  readonly iv: Buffer;
  /** GCM ciphertext followed by its tag. */
  readonly ciphertext: Buffer;
}

/** Length in bytes of the plaintext a blob carries. */
export function plaintextLength(blob: Blob): number {
  return blob.ciphertext.length - TAG_BYTES;
}

export function encodeFrame(format: number, blob: Blob): Buffer {
  if (blob.iv.length !== IV_BYTES) throw new Error('IV must be 12 bytes');
  if (blob.ciphertext.length < TAG_BYTES) throw new Error('ciphertext must carry a GCM tag');
  if (!KEY_ID_PATTERN.test(blob.keyId)) throw new Error('key id must be a 36-character id');
  const keyIdEnd = HEADER_BYTES + IV_BYTES + blob.ciphertext.length + KEY_ID_BYTES;
  if (keyIdEnd > 0xffff) throw new Error('plaintext too long for the blob format');

  const out = Buffer.alloc(keyIdEnd + VERSION_BYTES + DIGEST_BYTES);
  out.writeUInt16LE(format, 0);
  out.writeUInt16LE(keyIdEnd, 2);
  blob.iv.copy(out, HEADER_BYTES);
  blob.ciphertext.copy(out, HEADER_BYTES + IV_BYTES);
  out.write(blob.keyId, keyIdEnd - KEY_ID_BYTES, 'ascii');
  out.writeUInt32LE(blob.materialVersion, keyIdEnd);
  sha256(out.subarray(0, keyIdEnd + VERSION_BYTES)).copy(out, keyIdEnd + VERSION_BYTES);
  return out;
}

/**
 * Decodes and checks a frame of the given format version. Throws KMS.2201 for anything that is
 * not a well-formed blob of that format (a blob of another kind included).
 */
export function decodeFrame(format: number, bytes: Buffer): Blob {
  const invalid = (why: string): KmsError => new KmsError('KMS.2201', { cause: new Error(why) });
  if (bytes.length < FRAME_BYTES) throw invalid('too short');
  if (bytes.readUInt16LE(0) !== format) throw invalid('unknown format version');
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
