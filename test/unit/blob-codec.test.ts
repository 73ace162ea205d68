import { randomBytes } from 'node:crypto';
import { KmsError } from '../../src/errors';
import { BLOB_FORMAT_V1, dataKeyLength, decodeBlob, encodeBlob, type Blob } from '../../src/kms/blob-codec';
import { withTrailerRecomputed } from '../helpers/blob';

const blob: Blob = {
  keyId: '0d0466b0-e727-4d9c-b35d-f84bb474a37f',
  materialVersion: 7,
  iv: randomBytes(12),
  ciphertext: randomBytes(64 + 16),
};

function expectInvalid(bytes: Buffer): void {
  expect(() => decodeBlob(bytes)).toThrow(expect.objectContaining({ code: 'KMS.2201' }));
}

describe('the ciphertext blob', () => {
  it('round-trips every field', () => {
    const decoded = decodeBlob(encodeBlob(blob));
    expect(decoded).toEqual(blob);
    expect(dataKeyLength(decoded)).toBe(64);
  });

  it('keeps the outer frame of Huawei KMS blobs: version, key-id end, ASCII key id, material version, SHA-256 trailer', () => {
    const bytes = encodeBlob(blob);
    const keyIdEnd = bytes.readUInt16LE(2);
    expect(bytes.readUInt16LE(0)).toBe(BLOB_FORMAT_V1);
    expect(bytes.length).toBe(keyIdEnd + 4 + 32);
    expect(bytes.toString('ascii', keyIdEnd - 36, keyIdEnd)).toBe(blob.keyId);
    expect(bytes.readUInt32LE(keyIdEnd)).toBe(7);
    // 64-byte data key: 4 header + 12 IV + 64 + 16 tag + 36 id + 4 version + 32 digest.
    expect(bytes.length).toBe(168);
  });

  it('rejects every single-bit change with KMS.2201', () => {
    const bytes = encodeBlob(blob);
    for (let offset = 0; offset < bytes.length; offset++) {
      for (let bit = 0; bit < 8; bit++) {
        const tampered = Buffer.from(bytes);
        tampered[offset] = tampered[offset]! ^ (1 << bit);
        expectInvalid(tampered);
      }
    }
  });

  it('is a checksum, not authentication: with the trailer recomputed, a changed IV, ciphertext, tag or version decodes', () => {
    // So the codec cannot be what refuses a forged blob: GCM in the HSM is (test/api/datakeys.test.ts).
    const bytes = encodeBlob(blob);
    const keyIdEnd = bytes.readUInt16LE(2);
    const change = (offset: number): Blob => {
      const tampered = Buffer.from(bytes);
      tampered[offset] = tampered[offset]! ^ 0x01;
      return decodeBlob(withTrailerRecomputed(tampered));
    };
    expect(change(4).iv).not.toEqual(blob.iv);
    expect(change(16).ciphertext).not.toEqual(blob.ciphertext);
    expect(change(16 + 64 + 15).ciphertext).not.toEqual(blob.ciphertext); // the tag's last byte
    expect(change(keyIdEnd).materialVersion).toBe(6);
  });

  it('rejects empty, short, long and foreign input with KMS.2201', () => {
    const bytes = encodeBlob(blob);
    expectInvalid(Buffer.alloc(0));
    expectInvalid(bytes.subarray(0, 100));
    expectInvalid(Buffer.concat([bytes, Buffer.from([0])]));
    expectInvalid(randomBytes(168));
  });

  it('is a KmsError a client can be told about, with the reason kept for the log only', () => {
    try {
      decodeBlob(Buffer.alloc(10));
      throw new Error('not reached');
    } catch (error) {
      expect(error).toBeInstanceOf(KmsError);
      expect((error as KmsError).publicMessage).toBe('Invalid cipher_text.');
      expect(((error as KmsError).cause as Error).message).toBe('too short');
    }
  });
});
