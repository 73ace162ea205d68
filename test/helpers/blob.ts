import { createHash } from 'node:crypto';

/**
 * Recomputes a ciphertext blob's SHA-256 trailer in place (over bytes 0 .. E+3, E = the u16 at
 * offset 2; see src/kms/blob-codec.ts), as anyone can after changing a blob: written here from the
 * format, not with the codec, so that tests of the codec do not vouch for themselves.
 */
export function withTrailerRecomputed(bytes: Buffer): Buffer {
  const digestAt = bytes.readUInt16LE(2) + 4;
  createHash('sha256').update(bytes.subarray(0, digestAt)).digest().copy(bytes, digestAt);
  return bytes;
}
