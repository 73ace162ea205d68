import { randomBytes } from 'node:crypto';
import { decodeBlob, encodeBlob, type Blob } from '../../src/kms/blob-codec';
import { base64BlobFromText, base64BlobToText, DATA_BLOB_FORMAT_V1, dataBlobFromText, dataBlobToText, decodeDataBlob, encodeDataBlob, PRIVATE_KEY_BLOB_FORMAT_V1 } from '../../src/kms/data-blob-codec';

const blob = (plaintextBytes: number): Blob => ({
  keyId: '0d0466b0-e727-4d9c-b35d-f84bb474a37f',
  materialVersion: 3,
  iv: randomBytes(12),
  ciphertext: randomBytes(plaintextBytes + 16),
});

function expectInvalid(run: () => unknown): void {
  expect(run).toThrow(expect.objectContaining({ code: 'KMS.2201' }));
}

describe('the data blob', () => {
  it('round-trips every field, in base64, on the shared frame with format 0x4401', () => {
    const original = blob(10);
    const text = dataBlobToText(original);
    expect(dataBlobFromText(text)).toEqual(original);
    const bytes = Buffer.from(text, 'base64');
    expect(bytes.readUInt16LE(0)).toBe(DATA_BLOB_FORMAT_V1);
    const keyIdEnd = bytes.readUInt16LE(2);
    expect(bytes.toString('ascii', keyIdEnd - 36, keyIdEnd)).toBe(original.keyId);
    expect(bytes.readUInt32LE(keyIdEnd)).toBe(3);
    expect(bytes.length).toBe(104 + 10);
  });

  it('never reads as hex, at any plaintext length: its base64 begins with "AU"', () => {
    // re-encrypt tells the two kinds apart by this (src/kms/reencrypt-service.ts).
    for (const length of [1, 2, 3, 31, 32, 33, 4096]) {
      const text = dataBlobToText(blob(length));
      expect(text.slice(0, 2)).toBe('AU');
      expect(text).not.toMatch(/^[0-9a-fA-F]+$/);
    }
  });

  it('fits the API pattern of decrypt-data for 1 to 4096 bytes (base64, 128 to 5648 characters)', () => {
    expect(dataBlobToText(blob(1)).length).toBeGreaterThanOrEqual(128);
    expect(dataBlobToText(blob(4096)).length).toBeLessThanOrEqual(5648);
  });

  it('is not a data key blob, nor a data key blob a data blob (KMS.2201)', () => {
    const original = blob(32);
    expectInvalid(() => decodeBlob(encodeDataBlob(original)));
    expectInvalid(() => decodeDataBlob(encodeBlob(original)));
  });

  it('takes canonical base64 only: no missing padding, no stray characters, no spare bits set (KMS.2201)', () => {
    const text = dataBlobToText(blob(12)); // 116 bytes: base64 ends in one "="
    expect(text.endsWith('=') && !text.endsWith('==')).toBe(true);
    expectInvalid(() => dataBlobFromText(text.slice(0, -1)));
    expectInvalid(() => dataBlobFromText(`${text.slice(0, 8)} ${text.slice(8)}`));
    expectInvalid(() => dataBlobFromText(`${text.slice(0, 8)}-${text.slice(9)}`));
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const last = text[text.length - 2]!;
    const respelt = `${text.slice(0, -2)}${alphabet[alphabet.indexOf(last) ^ 1]}=`;
    expect(Buffer.from(respelt, 'base64').equals(Buffer.from(text, 'base64'))).toBe(true);
    expectInvalid(() => dataBlobFromText(respelt));
  });
});

describe('the private-key blob of a data key pair', () => {
  it('round-trips with its purpose, on the shared frame with format 0x5001; its base64 begins with "AV", never hex', () => {
    for (const length of [1, 2, 3, 300, 3300]) {
      const original = blob(length);
      const text = base64BlobToText({ purpose: 'privateKey', blob: original });
      expect(text.slice(0, 2)).toBe('AV');
      expect(Buffer.from(text, 'base64').readUInt16LE(0)).toBe(PRIVATE_KEY_BLOB_FORMAT_V1);
      expect(base64BlobFromText(text)).toEqual({ purpose: 'privateKey', blob: original });
    }
  });

  it('a data blob reads as a data blob; a data key blob in base64 as neither (KMS.2201); dataBlobFromText takes no private-key blob', () => {
    const original = blob(20);
    expect(base64BlobFromText(dataBlobToText(original))).toEqual({ purpose: 'data', blob: original });
    expectInvalid(() => base64BlobFromText(encodeBlob(original).toString('base64')));
    expectInvalid(() => dataBlobFromText(base64BlobToText({ purpose: 'privateKey', blob: original })));
  });

  it('an RSA_4096 private key (about 3.2 KB as base64 PKCS#8) fits decrypt-data\'s cipher_text limit of 5648 characters', () => {
    expect(base64BlobToText({ purpose: 'privateKey', blob: blob(3300) }).length).toBeLessThanOrEqual(5648);
  });
});
