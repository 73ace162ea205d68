/**
 * Test vectors in the AWS Crypto Tools manifest format (awses-decrypt): every manifest under
 * client/test/vectors/ is decrypted with the keyrings it names (raw AES), through this package's
 * client with its default policy (key commitment required). Ours are made by vectors/generate.ts.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { EnvelopeClient, MessageError } from '../src';
import { readDecryptManifest } from './helpers/vectors';

const root = path.join(__dirname, 'vectors');
const manifests = readdirSync(root, { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => path.join(root, entry.name, 'manifest.json'));

describe.each(manifests)('%s', (manifestPath) => {
  const { tests, skipped } = readDecryptManifest(manifestPath);

  test('has raw-AES tests, and names what it skipped', () => {
    expect(tests.length).toBeGreaterThan(0);
    expect(skipped).toEqual([]);
  });

  test.each(tests.map((t) => [t.id, t] as const))('%s decrypts to its plaintext', async (_id, vector) => {
    const client = new EnvelopeClient({ kms: vector.keyring, cache: false });
    const { plaintext } = await client.decrypt(vector.ciphertext);
    expect(plaintext.equals(vector.plaintext)).toBe(true);
  });

  test('a flipped last byte of each message is refused', async () => {
    for (const vector of tests) {
      const client = new EnvelopeClient({ kms: vector.keyring, cache: false });
      const tampered = Buffer.from(vector.ciphertext);
      tampered[tampered.length - 1]! ^= 0x80;
      await expect(client.decrypt(tampered)).rejects.toBeInstanceOf(MessageError);
    }
  });
});
