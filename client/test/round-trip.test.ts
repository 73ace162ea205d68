/**
 * Records and streams round-trip through a real service on SoftHSM, with AK/SK signing (the SDK
 * core's signer) and with a token; the encryption context is bound by the KMS, not only locally.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { EncryptionContextMismatchError, EnvelopeClient, KmsRequestError, MessageError, NoMatchingDataKeyError, SUITE } from '../src';
import { startClientTestService, type ClientTestService } from './helpers/kms';

let kms: ClientTestService;
beforeAll(async () => {
  kms = await startClientTestService();
});
afterAll(async () => {
  await kms?.stop();
});

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('records', () => {
  test('encrypt → decrypt with AK/SK: the message is format v2, suite 0x0478, and names our key', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: false });
    const plaintext = randomBytes(10_000);
    const message = await client.encrypt(plaintext, { encryptionContext: { tenant: 't1', purpose: 'test' } });
    expect(message[0]).toBe(0x02);
    expect(message.readUInt16BE(1)).toBe(SUITE);
    expect(message.includes(Buffer.from(`${kms.projectId}/${kms.keyId}`))).toBe(true);
    expect(message.includes(plaintext.subarray(0, 32))).toBe(false);
    const opened = await client.decrypt(message, { expectedEncryptionContext: { tenant: 't1' } });
    expect(opened.plaintext.equals(plaintext)).toBe(true);
    expect(opened.encryptionContext).toEqual({ tenant: 't1', purpose: 'test' });
    expect(client.metrics.kmsCallsByOperation).toEqual({ 'create-datakey': 1, 'decrypt-datakey': 1 });
  });

  test('with an X-Auth-Token, and an empty record', async () => {
    const client = new EnvelopeClient({ kms: kms.kms({ auth: { token: await kms.service.token() } }), cache: false });
    const message = await client.encrypt(Buffer.alloc(0));
    expect((await client.decrypt(message)).plaintext.length).toBe(0);
  });

  test('a required context pair that the message lacks is refused, and its plaintext not returned', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: false });
    const message = await client.encrypt('secret', { encryptionContext: { tenant: 't1' } });
    await expect(client.decrypt(message, { expectedEncryptionContext: { tenant: 't2' } })).rejects.toBeInstanceOf(
      EncryptionContextMismatchError,
    );
  });

  test('a message whose stored context was changed is refused by the KMS itself (KMS.2201), with its request id', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: false });
    const message = await client.encrypt('secret', { encryptionContext: { tenant: 'aaaa' } });
    const at = message.indexOf(Buffer.from('aaaa'));
    const changed = Buffer.from(message);
    changed.write('bbbb', at);
    const error = await client.decrypt(changed).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KmsRequestError);
    expect((error as KmsRequestError).operation).toBe('decrypt-datakey');
    expect((error as KmsRequestError).code).toBe('KMS.2201');
    expect((error as KmsRequestError).requestId).toMatch(/.+/);
    expect(String(error)).not.toMatch(/secret/);
    // Nor the data key's ciphertext that was sent: an error names the call, not its body.
    const info = Buffer.from(`${kms.projectId}/${kms.keyId}`);
    // In the header the provider info is followed by the data key ciphertext's 2-byte length, then the ciphertext.
    const edkStart = changed.indexOf(info) + info.length + 2;
    const edkHex = changed.subarray(edkStart, edkStart + 16).toString('hex');
    expect(`${String(error)} ${JSON.stringify(error)}`.toLowerCase()).not.toContain(edkHex);
  });

  test('the KMS refuses the data key under another context at its API (what the keyring relies on)', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: false });
    await client.encrypt('x', { encryptionContext: { tenant: 'a' } });
    const created = await kms.service.client().call('create-datakey', { key_id: kms.keyId, datakey_length: '256', encryption_context: { tenant: 'a' } });
    const refused = await kms.service.client().call('decrypt-datakey', {
      key_id: kms.keyId,
      cipher_text: created.body.cipher_text,
      datakey_cipher_length: '32',
      encryption_context: { tenant: 'b' },
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error_code).toBe('KMS.2201');
  });

  test('a data key of another key or project is not sent anywhere: refused locally, no KMS call', async () => {
    const writer = new EnvelopeClient({ kms: kms.kms(), cache: false });
    const message = await writer.encrypt('for another key');
    const otherKey = (await kms.service.client().call('create-key', { key_alias: `other-${Date.now()}` })).body.key_info.key_id as string;
    const reader = new EnvelopeClient({ kms: kms.kms({ keyId: otherKey }), cache: false });
    await expect(reader.decrypt(message)).rejects.toBeInstanceOf(NoMatchingDataKeyError);
    const otherService = new EnvelopeClient({ kms: kms.kms({ providerId: 'another-kms' }), cache: false });
    await expect(otherService.decrypt(message)).rejects.toBeInstanceOf(NoMatchingDataKeyError);
    expect(reader.metrics.kmsCalls + otherService.metrics.kmsCalls).toBe(0);
  });

  test('a tampered byte anywhere in a message is refused, with one of the refusals a message can cause', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), frameLength: 64 });
    const plaintext = randomBytes(300);
    const message = await client.encrypt(plaintext, { encryptionContext: { k: 'v' } });
    const failures: string[] = [];
    const kinds = new Set<string>();
    for (let at = 0; at < message.length; at += 1) {
      const tampered = Buffer.from(message);
      tampered[at]! ^= 0x01;
      const outcome = await client.decrypt(tampered).then(
        (opened) => (opened.plaintext.equals(plaintext) ? 'accepted' : 'wrong'),
        (error: unknown) => {
          // The library's checks (MessageError), a data key of another provider or key (refused
          // locally), or the KMS's refusal of an altered data key or context (a 4xx, no 500).
          if (error instanceof MessageError || error instanceof NoMatchingDataKeyError) return error.name;
          if (error instanceof KmsRequestError && error.status >= 400 && error.status < 500) return `${error.name} ${error.code}`;
          return `unexpected ${String(error)}`;
        },
      );
      if (outcome === 'accepted' || outcome === 'wrong' || outcome.startsWith('unexpected')) failures.push(`${at}: ${outcome}`);
      else kinds.add(outcome);
    }
    expect(failures).toEqual([]);
    expect(kinds).toContain('MessageError');
    expect(kinds).toContain('KmsRequestError KMS.2201');
  });

  test('a truncated message, and one with two frames swapped, are refused', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), frameLength: 64 });
    const message = await client.encrypt(randomBytes(64 * 4 + 10));
    await expect(client.decrypt(message.subarray(0, message.length - 30))).rejects.toBeInstanceOf(MessageError);
    // A regular frame is 4 (sequence) + 12 (IV) + 64 + 16 (tag) = 96 bytes; the body starts after the header.
    const frame = 96;
    const bodyStart = message.length - (4 * frame + (4 + 4 + 12 + 4 + 10 + 16));
    const swapped = Buffer.from(message);
    message.copy(swapped, bodyStart, bodyStart + frame, bodyStart + 2 * frame);
    message.copy(swapped, bodyStart + frame, bodyStart, bodyStart + frame);
    await expect(client.decrypt(swapped)).rejects.toBeInstanceOf(MessageError);
    await expect(client.decrypt(message)).resolves.toBeDefined();
  });
});

describe('streams', () => {
  test('a frame’s plaintext is released only after its tag verified: a bad third frame releases the first two only', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), frameLength: 1000, cache: false });
    const plaintext = randomBytes(5000);
    const message = await client.encrypt(plaintext);
    // Frames of 4 (sequence) + 12 (IV) + 1000 + 16 (tag) bytes; the final frame (4 + 4 + 12 + 4 + 0 + 16) ends the message.
    const frame = 1032;
    const bodyStart = message.length - (5 * frame + 40);
    const tampered = Buffer.from(message);
    tampered[bodyStart + 2 * frame + 16 + 500]! ^= 0x01; // inside the third frame's content
    const released: Buffer[] = [];
    const outcome = await pipeline(Readable.from([tampered]), client.decryptStream(), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) released.push(chunk);
    }).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(MessageError);
    expect(Buffer.concat(released).equals(plaintext.subarray(0, 2000))).toBe(true);
  });

  test('a wrong expectedEncryptionContext releases zero bytes from decryptStream', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), frameLength: 64, cache: false });
    const message = await client.encrypt(randomBytes(5000), { encryptionContext: { tenant: 't1' } });
    const released: Buffer[] = [];
    const outcome = await pipeline(Readable.from([message]), client.decryptStream({ expectedEncryptionContext: { tenant: 't2' } }), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) released.push(chunk);
    }).catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(EncryptionContextMismatchError);
    expect(Buffer.concat(released).length).toBe(0);
  });

  test('encryptStream → decryptStream round-trips, and the record API reads what the stream wrote', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), frameLength: 1024 });
    const plaintext = randomBytes(200_000);
    const message = await collect(Readable.from([plaintext]).pipe(client.encryptStream({ encryptionContext: { file: 'f' } })));
    const opened = await collect(Readable.from([message]).pipe(client.decryptStream({ expectedEncryptionContext: { file: 'f' } })));
    expect(opened.equals(plaintext)).toBe(true);
    expect((await client.decrypt(message)).plaintext.equals(plaintext)).toBe(true);
  });

  test('a truncated stream fails, and a stream spliced from two messages fails', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), frameLength: 512, cache: false });
    const one = await client.encrypt(randomBytes(4096));
    const two = await client.encrypt(randomBytes(4096));
    const drain = (message: Buffer): Promise<void> =>
      pipeline(Readable.from([message]), client.decryptStream(), async (source: AsyncIterable<Buffer>) => {
        for await (const _chunk of source) void _chunk;
      });
    await expect(drain(one.subarray(0, one.length - 100))).rejects.toBeInstanceOf(MessageError);
    // The header (and first frames) of one, then the rest of two: same layout, another message id and key.
    const half = Math.floor(one.length / 2);
    await expect(drain(Buffer.concat([one.subarray(0, half), two.subarray(half)]))).rejects.toBeInstanceOf(MessageError);
    await expect(drain(one)).resolves.toBeUndefined();
  });
});
