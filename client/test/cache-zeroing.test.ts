/**
 * The cache's plaintext data keys are zeroed when they leave it (the library's LRU dispose), here
 * seen on the very material object the cache holds: a keyring that records what it filled in.
 * No service needed: a raw AES keyring stands in for the KMS.
 */
import { randomBytes } from 'node:crypto';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { KeyringNode, type EncryptedDataKey, type NodeDecryptionMaterial, type NodeEncryptionMaterial } from '@aws-crypto/material-management-node';
import { EnvelopeClient } from '../src';

class RecordingKeyring extends KeyringNode {
  readonly filled: NodeEncryptionMaterial[] = [];
  private readonly inner: RawAesKeyringNode;
  constructor() {
    super();
    const unencryptedMasterKey = new Uint8Array(32);
    unencryptedMasterKey.set(randomBytes(32));
    this.inner = new RawAesKeyringNode({
      keyName: 'k',
      keyNamespace: 'test',
      unencryptedMasterKey,
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    });
  }
  async _onEncrypt(material: NodeEncryptionMaterial): Promise<NodeEncryptionMaterial> {
    const filled = await this.inner.onEncrypt(material);
    this.filled.push(filled);
    return filled;
  }
  _onDecrypt(material: NodeDecryptionMaterial, edks: EncryptedDataKey[]): Promise<NodeDecryptionMaterial> {
    return this.inner.onDecrypt(material, edks);
  }
}

test('an entry pushed out by a newer one (capacity 1) has its data key zeroed', async () => {
  const keyring = new RecordingKeyring();
  const client = new EnvelopeClient({ kms: keyring, cache: { maxAgeMs: 60_000, maxMessages: 100, maxBytes: 1_000_000, capacity: 1 } });
  await client.encrypt('a', { encryptionContext: { t: 'A' } });
  const [first] = keyring.filled;
  expect(first!.hasUnencryptedDataKey).toBe(true);
  await client.encrypt('b', { encryptionContext: { t: 'B' } });
  expect(keyring.filled).toHaveLength(2);
  expect(first!.hasUnencryptedDataKey).toBe(false);
  expect(keyring.filled[1]!.hasUnencryptedDataKey).toBe(true);
});

test('an entry past its message limit is dropped and zeroed', async () => {
  const keyring = new RecordingKeyring();
  const client = new EnvelopeClient({ kms: keyring, cache: { maxAgeMs: 60_000, maxMessages: 2, maxBytes: 1_000_000, capacity: 10 } });
  await client.encrypt('1');
  await client.encrypt('2');
  expect(keyring.filled).toHaveLength(1);
  await client.encrypt('3');
  expect(keyring.filled).toHaveLength(2);
  expect(keyring.filled[0]!.hasUnencryptedDataKey).toBe(false);
});
