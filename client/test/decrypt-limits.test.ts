/**
 * What decryption refuses before doing the work a message asks for: frames larger than the
 * maxBodySize (default 1 MiB), and more encrypted data keys than maxEncryptedDataKeys (which does
 * not limit encryption). Raw AES keyrings stand in for the KMS.
 */
import { randomBytes } from 'node:crypto';
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { CommitmentPolicy, MultiKeyringNode } from '@aws-crypto/material-management-node';
import { DEFAULT_MAX_BODY_SIZE, EnvelopeClient, MessageError, SUITE } from '../src';

function rawKeyring(name: string): RawAesKeyringNode {
  const unencryptedMasterKey = new Uint8Array(32);
  unencryptedMasterKey.set(randomBytes(32));
  return new RawAesKeyringNode({ keyName: name, keyNamespace: 'test', unencryptedMasterKey, wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING });
}

/** Polls until the condition holds or the attempts run out (no timed assertion: the loop only bounds the wait). */
async function eventually(condition: () => boolean, attempts = 40, everyMs = 50): Promise<boolean> {
  for (let i = 0; i < attempts && !condition(); i += 1) await new Promise((resolve) => setTimeout(resolve, everyMs));
  return condition();
}

test('a frame larger than the default maxBodySize is refused from its frame header, before its content arrives', async () => {
  const keyring = rawKeyring('k');
  // Another writer's message: frames of 2 MiB (this client writes at most 1 MiB).
  const { encrypt } = buildEncrypt(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const frameLength = 2 * DEFAULT_MAX_BODY_SIZE;
  const { result: message } = await encrypt(keyring, randomBytes(frameLength + 10), { suiteId: SUITE, frameLength });
  const client = new EnvelopeClient({ kms: keyring, cache: false });

  // The stream is given the header, the first frame's header (sequence number, IV) and 1000 of its
  // 2 MiB of content. The body: that frame (4 + 12 + content + 16 tag), then the final frame
  // (4 + 4 + 12 + 4 + 10 bytes of content + 16).
  const headerLength = message.length - (4 + 12 + frameLength + 16) - (4 + 4 + 12 + 4 + 10 + 16);
  const stream = client.decryptStream();
  const released: Buffer[] = [];
  let failure: unknown;
  stream.on('data', (chunk: Buffer) => released.push(chunk));
  stream.on('error', (error) => (failure = error));
  stream.write(message.subarray(0, headerLength + 4 + 12 + 1000));
  expect(await eventually(() => failure !== undefined)).toBe(true);
  expect(failure).toBeInstanceOf(MessageError);
  expect(String(failure)).toMatch(/maxBodySize/);
  expect(released).toEqual([]);

  // The record API applies the same default; a caller may raise it knowingly.
  await expect(client.decrypt(message)).rejects.toThrow(/maxBodySize/);
  expect((await client.decrypt(message, { maxBodySize: frameLength })).plaintext.length).toBe(frameLength + 10);
});

test('maxEncryptedDataKeys limits decryption only: a multi-keyring encrypts, and its message needs the limit raised to open', async () => {
  const generator = rawKeyring('a');
  const multi = new MultiKeyringNode({ generator, children: [rawKeyring('b')] });
  const client = new EnvelopeClient({ kms: multi, cache: false });
  const message = await client.encrypt('under two keys');
  await expect(client.decrypt(message)).rejects.toThrow(/maxEncryptedDataKeys/);
  const reader = new EnvelopeClient({ kms: multi, cache: false, maxEncryptedDataKeys: 2 });
  expect((await reader.decrypt(message)).plaintext.toString()).toBe('under two keys');
});
