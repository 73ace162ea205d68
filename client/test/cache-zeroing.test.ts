/**
 * The cache's plaintext data keys are zeroed when they leave it (the library's LRU dispose), here
 * seen on the very material object the cache holds: a keyring that records what it filled in.
 * No service needed: a raw AES keyring stands in for the KMS.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { KeyringNode, type EncryptedDataKey, type NodeDecryptionMaterial, type NodeEncryptionMaterial } from '@aws-crypto/material-management-node';
import { EnvelopeClient } from '../src';

class RecordingKeyring extends KeyringNode {
  readonly filled: NodeEncryptionMaterial[] = [];
  readonly opened: NodeDecryptionMaterial[] = [];
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
  async _onDecrypt(material: NodeDecryptionMaterial, edks: EncryptedDataKey[]): Promise<NodeDecryptionMaterial> {
    const opened = await this.inner.onDecrypt(material, edks);
    this.opened.push(opened);
    return opened;
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

/** Polls until the condition holds or the attempts run out (no timed assertion: the loop only bounds the wait). */
async function eventually(condition: () => boolean, attempts = 200, everyMs = 50): Promise<boolean> {
  for (let i = 0; i < attempts && !condition(); i += 1) await new Promise((resolve) => setTimeout(resolve, everyMs));
  return condition();
}

test('an entry past its age is zeroed with no further traffic (swept, not only on lookup)', async () => {
  const keyring = new RecordingKeyring();
  // An age well beyond one encrypt on a loaded machine (the sweep must not have come yet when it returns), well within the wait below.
  const client = new EnvelopeClient({ kms: keyring, cache: { maxAgeMs: 1000, maxMessages: 100, maxBytes: 1_000_000, capacity: 10 } });
  await client.encrypt('idle afterwards');
  expect(keyring.filled[0]!.hasUnencryptedDataKey).toBe(true);
  expect(await eventually(() => !keyring.filled[0]!.hasUnencryptedDataKey)).toBe(true);
  client.close();
});

test('close() zeroes every cached data key, and nothing is cached afterwards', async () => {
  const keyring = new RecordingKeyring();
  const client = new EnvelopeClient({ kms: keyring, cache: { maxAgeMs: 60_000, maxMessages: 100, maxBytes: 1_000_000, capacity: 10 } });
  const a = await client.encrypt('a', { encryptionContext: { t: 'A' } });
  await client.encrypt('b', { encryptionContext: { t: 'B' } });
  expect(keyring.filled.map((m) => m.hasUnencryptedDataKey)).toEqual([true, true]);
  client.close();
  expect(keyring.filled.map((m) => m.hasUnencryptedDataKey)).toEqual([false, false]);
  // Still usable: a new data key per message, none kept.
  expect((await client.decrypt(a)).plaintext.toString()).toBe('a');
  await client.encrypt('c', { encryptionContext: { t: 'A' } });
  await client.encrypt('d', { encryptionContext: { t: 'A' } });
  expect(keyring.filled).toHaveLength(4);
  expect(keyring.filled.slice(2).map((m) => m.hasUnencryptedDataKey)).toEqual([false, false]);
});

test('an encrypting stream left half-way, by destroy() without an error or by break in for await, has its data key zeroed', async () => {
  const keyring = new RecordingKeyring();
  const client = new EnvelopeClient({ kms: keyring, cache: false, frameLength: 1024 });
  const stream = client.encryptStream();
  stream.write(randomBytes(64 * 1024));
  await new Promise((resolve) => stream.once('data', resolve));
  stream.destroy();
  expect(keyring.filled).toHaveLength(1);
  expect(await eventually(() => !keyring.filled[0]!.hasUnencryptedDataKey, 40)).toBe(true);
  // for await's break destroys with an AbortError (the error path).
  const broken = client.encryptStream();
  broken.write(randomBytes(64 * 1024));
  for await (const chunk of broken) {
    expect((chunk as Buffer).length).toBeGreaterThan(0);
    break;
  }
  expect(broken.destroyed).toBe(true);
  expect(keyring.filled).toHaveLength(2);
  expect(await eventually(() => !keyring.filled[1]!.hasUnencryptedDataKey, 40)).toBe(true);
});

test('a message done normally (record, or a stream read to its end) has its data key zeroed (cache off: no other copy)', async () => {
  const keyring = new RecordingKeyring();
  const client = new EnvelopeClient({ kms: keyring, cache: false, frameLength: 1024 });
  await client.encrypt(randomBytes(5000));
  expect(keyring.filled[0]!.hasUnencryptedDataKey).toBe(false);
  const stream = client.encryptStream();
  stream.end(randomBytes(5000));
  for await (const chunk of stream) void chunk;
  expect(await eventually(() => !keyring.filled[1]!.hasUnencryptedDataKey, 40)).toBe(true);
});

const afterAllKill: (() => void)[] = [];
afterAll(() => afterAllKill.forEach((kill) => kill()));

test('the cache does not keep the process alive: a process done with its client exits by itself', async () => {
  const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), path.join(__dirname, 'helpers', 'idle-exit-child.ts')], {
    env: { PATH: process.env.PATH },
  });
  // If it hangs (the failure this test looks for), it must not outlive the test.
  afterAllKill.push(() => child.exitCode === null && child.signalCode === null && child.kill());
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  // A ref'd timer would keep the child running: the test then fails on Jest's timeout.
  const status = await new Promise<number | null>((resolve) => child.once('close', resolve));
  expect(status).toBe(0);
  expect(stdout).toBe('done\n');
}, 30_000);

test('a decrypted message (record or stream) has its data key zeroed when done (cache off)', async () => {
  const keyring = new RecordingKeyring();
  const client = new EnvelopeClient({ kms: keyring, cache: false, frameLength: 1024 });
  const message = await client.encrypt(randomBytes(5000));
  await client.decrypt(message);
  expect(keyring.opened).toHaveLength(1);
  expect(await eventually(() => !keyring.opened[0]!.hasUnencryptedDataKey, 40)).toBe(true);
  const stream = client.decryptStream();
  stream.end(message);
  for await (const chunk of stream) void chunk;
  expect(keyring.opened).toHaveLength(2);
  expect(await eventually(() => !keyring.opened[1]!.hasUnencryptedDataKey, 40)).toBe(true);
});
