import { KmsError } from '../errors';
import { decodeFrame, encodeFrame, type Blob } from './blob-frame';
import { strictBase64 } from './strict-base64';

/**
 * The data blob: the one codec for the `cipher_text` of encrypt-data and decrypt-data, which the
 * API carries in base64 (the SDK's docstring says hex; its examples and clients are base64). It is
 * the shared frame of blob-frame.ts, as Huawei KMS's own encrypt-data blobs are, with format
 * version 0x4401 ("D", 1), the ciphertext being the caller's plaintext:
 *
 * | offset      | bytes | field                                                              |
 * |-------------|-------|--------------------------------------------------------------------|
 * | 0           | 2     | format version, u16 little-endian: 0x4401 ("D", 1) for this layout  |
 * | 2           | 2     | E = offset where the key id ends, u16 little-endian                |
 * | 4           | 12    | AES-GCM IV (from the HSM's random generator)                       |
 * | 16          | n     | AES-256-GCM ciphertext of the plaintext (n = 1 .. 4096 bytes)      |
 * | 16 + n      | 16    | GCM tag                                                            |
 * | E - 36      | 36    | CMK id, ASCII: decrypt-data needs no key_id                        |
 * | E           | 4     | key material version, u32 little-endian                            |
 * | E + 4       | 32    | SHA-256 of bytes 0 .. E+3                                          |
 *
 * The format's bytes `01 44` make every data blob's base64 begin with "AU": never a hex digit in
 * the second place, so re-encrypt tells a data blob (base64) from a data key blob (hex) by its text.
 * A blob of another format (a data key blob) does not decode here: KMS.2201.
 */

export const DATA_BLOB_FORMAT_V1 = 0x4401;

/**
 * The private-key blob: `private_key_cipher_text` of create-rsa-datakey-pair and
 * create-ec-datakey-pair, in base64 as the data blob. The same frame with format version 0x5001
 * ("P", 1), the ciphertext being the private key as the response's private_key_plain_text spells
 * it (the UTF-8 of base64 of the DER PKCS#8), so that decrypt-data, which opens it, answers that
 * very text as its plain_text. Its bytes `01 50` make its base64 begin with "AV" (never hex, as
 * for a data blob). Its purpose `privateKey` is bound into the GCM additional data (binding.ts):
 * a data blob given this format, or the reverse, does not open.
 */
export const PRIVATE_KEY_BLOB_FORMAT_V1 = 0x5001;

/** The blobs carried in base64: a data blob of encrypt-data, or a private-key blob of a data key pair. */
export type Base64BlobPurpose = 'data' | 'privateKey';

const FORMATS: Readonly<Record<Base64BlobPurpose, number>> = { data: DATA_BLOB_FORMAT_V1, privateKey: PRIVATE_KEY_BLOB_FORMAT_V1 };

/** A blob carried in base64, and what it holds (its format says which; the additional data holds it to that). */
export interface Base64Blob {
  readonly purpose: Base64BlobPurpose;
  readonly blob: Blob;
}

/** Canonical base64 with padding: what we send, and the only spelling we accept. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function encodeDataBlob(blob: Blob): Buffer {
  return encodeFrame(DATA_BLOB_FORMAT_V1, blob);
}

/** Decodes and checks a data blob's frame. Throws KMS.2201 for anything that is not a well-formed data blob. */
export function decodeDataBlob(bytes: Buffer): Blob {
  return decodeFrame(DATA_BLOB_FORMAT_V1, bytes);
}

/** A data blob as the API carries it: base64. */
export function dataBlobToText(blob: Blob): string {
  return encodeDataBlob(blob).toString('base64');
}

/**
 * The data blob of a `cipher_text`. Node's base64 decoder skips characters it does not know and
 * missing padding; only canonical base64 is taken, so that one blob has one spelling. KMS.2201.
 */
export function dataBlobFromText(text: string): Blob {
  return decodeDataBlob(canonicalBytes(text));
}

/** A blob of `purpose` as the API carries it: base64. */
export function base64BlobToText({ purpose, blob }: Base64Blob): string {
  return encodeFrame(FORMATS[purpose], blob).toString('base64');
}

/**
 * The blob of a base64 `cipher_text` (decrypt-data, re-encrypt), a data blob or a private-key blob
 * as its format says; anything else, a data key blob among them, is KMS.2201.
 */
export function base64BlobFromText(text: string): Base64Blob {
  const bytes = canonicalBytes(text);
  const purpose = bytes.length >= 2 && bytes.readUInt16LE(0) === PRIVATE_KEY_BLOB_FORMAT_V1 ? 'privateKey' : 'data';
  return { purpose, blob: decodeFrame(FORMATS[purpose], bytes) };
}

function canonicalBytes(text: string): Buffer {
  if (!BASE64.test(text)) throw new KmsError('KMS.2201', { cause: new Error('not canonical base64') });
  const bytes = strictBase64(text);
  if (bytes === undefined) throw new KmsError('KMS.2201', { cause: new Error('not canonical base64') });
  return bytes;
}
