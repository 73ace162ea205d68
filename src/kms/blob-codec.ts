import { decodeFrame, encodeFrame, plaintextLength, type Blob } from './blob-frame';

/**
 * The data key blob: the one codec for the `cipher_text` of create-datakey, encrypt-datakey and
 * decrypt-datakey (upper-case hex on the wire). It is the shared frame of blob-frame.ts with
 * format version 0x4B01 ("K", 1), the ciphertext being the data key's:
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
 * A blob of another format (a data blob of encrypt-data) does not decode here: KMS.2201.
 */

export type { Blob } from './blob-frame';

export const BLOB_FORMAT_V1 = 0x4b01;

/** Length in bytes of the data key a blob carries. */
export function dataKeyLength(blob: Blob): number {
  return plaintextLength(blob);
}

export function encodeBlob(blob: Blob): Buffer {
  return encodeFrame(BLOB_FORMAT_V1, blob);
}

/** Decodes and checks a blob's frame. Throws KMS.2201 for anything that is not a well-formed data key blob. */
export function decodeBlob(bytes: Buffer): Blob {
  return decodeFrame(BLOB_FORMAT_V1, bytes);
}
