/**
 * The data-key cache's limits, hit exactly, and the endpoints' failover and hedging, against a real
 * service on SoftHSM. The failing instances are a stopped service's port, and local servers that
 * answer 503 or never answer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvelopeClient, KmsRequestError, KmsUnavailableError, ConfigurationError, PlaintextLengthExceededError } from '../src';
import { startTestService } from '../../test/helpers/service';
import { startClientTestService, type ClientTestService } from './helpers/kms';

let kms: ClientTestService;
const servers: Server[] = [];
beforeAll(async () => {
  kms = await startClientTestService();
});
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    server.close();
  }
  await kms?.stop();
});

const limits = { maxAgeMs: 60_000, maxMessages: 5, maxBytes: 1_000_000, capacity: 10 };

describe('data-key cache', () => {
  test('N messages take one KMS call; the N+1th takes another', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: limits });
    for (let i = 0; i < 5; i += 1) await client.encrypt(`record ${i}`, { encryptionContext: { t: '1' } });
    expect(client.metrics).toMatchObject({ kmsCalls: 1, hits: 4, misses: 1 });
    await client.encrypt('record 5', { encryptionContext: { t: '1' } });
    expect(client.metrics).toMatchObject({ kmsCalls: 2, hits: 4, misses: 2 });
  });

  test('the byte limit: a data key encrypts at most maxBytes of plaintext', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: { ...limits, maxMessages: 1000, maxBytes: 3000 } });
    const record = Buffer.alloc(1000, 1);
    for (let i = 0; i < 3; i += 1) await client.encrypt(record);
    expect(client.metrics.kmsCalls).toBe(1);
    await client.encrypt(record);
    expect(client.metrics.kmsCalls).toBe(2);
  });

  test('the age limit: an entry older than maxAgeMs is not used', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: { ...limits, maxAgeMs: 1 } });
    await client.encrypt('a');
    // Poll the clock instead of sleeping a guessed time: the entry is stale once 2 ms have passed.
    const start = Date.now();
    while (Date.now() - start < 3) await new Promise((resolve) => setImmediate(resolve));
    await client.encrypt('b');
    expect(client.metrics.kmsCalls).toBe(2);
  });

  test('partitioned by encryption context: another context never reuses a data key', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: limits });
    await client.encrypt('a', { encryptionContext: { t: '1' } });
    await client.encrypt('a', { encryptionContext: { t: '2' } });
    await client.encrypt('a', { encryptionContext: { t: '1' } });
    expect(client.metrics).toMatchObject({ kmsCalls: 2, hits: 1, misses: 2 });
  });

  test('concurrent misses share one KMS call', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: limits });
    const messages = await Promise.all([1, 2, 3, 4, 5].map((i) => client.encrypt(`r${i}`, { encryptionContext: { t: 'c' } })));
    expect(client.metrics.kmsCallsByOperation).toEqual({ 'create-datakey': 1 });
    for (const message of messages) await client.decrypt(message);
    // The five messages share a data key (same EDK): the decryption side is cached too.
    expect(client.metrics.kmsCallsByOperation).toEqual({ 'create-datakey': 1, 'decrypt-datakey': 1 });
  });

  test('streams of declared length share a data key, counted against the byte limit; one writing more than declared fails', async () => {
    const client = new EnvelopeClient({ kms: kms.kms(), cache: { ...limits, maxBytes: 10_000 } });
    const run = async (declared: number, data: Buffer): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      await pipeline(Readable.from([data]), client.encryptStream({ plaintextLength: declared }), async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) chunks.push(chunk);
      });
      return Buffer.concat(chunks);
    };
    await run(4000, Buffer.alloc(4000, 1));
    await run(4000, Buffer.alloc(4000, 2));
    expect(client.metrics.kmsCalls).toBe(1);
    // 12 000 bytes would pass the 10 000-byte limit: a new data key.
    const third = await run(4000, Buffer.alloc(4000, 3));
    expect(client.metrics.kmsCalls).toBe(2);
    expect((await client.decrypt(third)).plaintext.equals(Buffer.alloc(4000, 3))).toBe(true);
    // A declared length is a maximum: the cache's count can not be cheated.
    await expect(run(100, Buffer.alloc(4000, 4))).rejects.toBeInstanceOf(PlaintextLengthExceededError);
    // Without a declared length, every stream gets a data key of its own.
    const before = client.metrics.kmsCalls;
    const plain = async (): Promise<void> =>
      pipeline(Readable.from([Buffer.alloc(10)]), client.encryptStream(), async (source: AsyncIterable<Buffer>) => {
        for await (const _chunk of source) void _chunk;
      });
    await plain();
    await plain();
    expect(client.metrics.kmsCalls - before).toBe(2);
  });

  test('every limit is required and must be a positive integer', () => {
    expect(() => new EnvelopeClient({ kms: kms.kms(), cache: { ...limits, maxBytes: 0 } })).toThrow(ConfigurationError);
    expect(() => new EnvelopeClient({ kms: kms.kms(), cache: { ...limits, maxMessages: Number.NaN } })).toThrow(ConfigurationError);
    const { maxAgeMs: _omitted, ...withoutAge } = limits;
    expect(() => new EnvelopeClient({ kms: kms.kms(), cache: withoutAge as typeof limits })).toThrow(ConfigurationError);
  });
});

function listen(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

describe('several endpoints', () => {
  let stopped: string;
  let failing: string;
  let silent: string;
  beforeAll(async () => {
    const other = await startTestService();
    stopped = other.service.url;
    await other.stop();
    failing = await listen((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'x-request-id': 'fake-503' });
      res.end(JSON.stringify({ error: { error_code: 'KMS.0104', error_msg: 'busy' }, error_code: 'KMS.0104', error_msg: 'busy' }));
    });
    silent = await listen(() => {
      // Never answers: only the client's timeout ends the call.
    });
  });

  test('two instances of one service (same token and database): with the first stopped, the second serves both ways', async () => {
    // A second instance on the first one's data directory and token, as a second host of one deployment.
    const second = await startTestService({ dataDir: kms.service.dataDir, env: { ...kms.service.moduleEnv } });
    const first = await startTestService({ dataDir: kms.service.dataDir, env: { ...kms.service.moduleEnv } });
    try {
      const client = new EnvelopeClient({ kms: kms.kms({ endpoints: [first.service.url, second.service.url] }), cache: false });
      const before = await client.encrypt('made while both ran', { encryptionContext: { t: 'ha' } });
      expect(client.metrics.kmsCallsByOperation).toEqual({ 'create-datakey': 1 });
      await first.service.close();
      const after = await client.encrypt('made with the first stopped', { encryptionContext: { t: 'ha' } });
      expect((await client.decrypt(before)).plaintext.toString()).toBe('made while both ran');
      expect((await client.decrypt(after)).plaintext.toString()).toBe('made with the first stopped');
      // The stopped first endpoint was tried, and refused the connection, on each call after it stopped.
      expect(client.metrics.kmsCallsByOperation).toEqual({ 'create-datakey': 3, 'decrypt-datakey': 4 });
    } finally {
      // close(), not stop(): stop() would delete the shared data directory.
      await second.service.close();
      await first.service.close().catch(() => undefined);
    }
  });

  test('generation fails over past a stopped instance and a 5xx; decryption too', async () => {
    const client = new EnvelopeClient({ kms: kms.kms({ endpoints: [stopped, failing, kms.service.service.url] }), cache: false });
    const message = await client.encrypt('over there');
    expect(client.metrics.kmsCallsByOperation).toEqual({ 'create-datakey': 3 });
    expect((await client.decrypt(message)).plaintext.toString()).toBe('over there');
  });

  test('generation fails over on a timeout', async () => {
    // The timeout applies to the live endpoint too: long enough for a loaded machine's answer (CI
    // once took more than 300 ms), short enough that the silent one's costs little.
    const client = new EnvelopeClient({ kms: kms.kms({ endpoints: [silent, kms.service.service.url], timeoutMs: 3000 }), cache: false });
    expect((await client.decrypt(await client.encrypt('late'))).plaintext.toString()).toBe('late');
  });

  test('decryption hedges: a silent first endpoint does not hold it up to the timeout', async () => {
    const writer = new EnvelopeClient({ kms: kms.kms(), cache: false });
    const message = await writer.encrypt('hedged');
    // The timeout is far beyond any test limit: only the hedge can get the answer from the second endpoint.
    const reader = new EnvelopeClient({
      kms: kms.kms({ endpoints: [silent, kms.service.service.url], timeoutMs: 600_000, hedgeDelayMs: 50 }),
      cache: false,
    });
    expect((await reader.decrypt(message)).plaintext.toString()).toBe('hedged');
    expect(reader.metrics.kmsCallsByOperation).toEqual({ 'decrypt-datakey': 2 });
  });

  test('when every endpoint fails, a KmsUnavailableError names the last KMS code and request id', async () => {
    const client = new EnvelopeClient({ kms: kms.kms({ endpoints: [stopped, failing] }), cache: false });
    const error = await client.encrypt('nowhere').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KmsUnavailableError);
    expect((error as KmsUnavailableError).code).toBe('KMS.0104');
    expect((error as KmsUnavailableError).requestId).toBe('fake-503');
    expect((error as KmsUnavailableError).attempts).toHaveLength(2);
  });

  test('a 4xx is the KMS verdict: no failover to the next endpoint', async () => {
    const client = new EnvelopeClient({
      kms: kms.kms({ endpoints: [kms.service.service.url, failing], keyId: '00000000-0000-0000-0000-000000000000' }),
      cache: false,
    });
    await expect(client.encrypt('x')).rejects.toMatchObject({ status: 404 });
    expect(client.metrics.kmsCalls).toBe(1);
  });

  test('a 4xx during a hedged decryption ends it: no call to the endpoints after it, the silent one abandoned', async () => {
    const writer = new EnvelopeClient({ kms: kms.kms(), cache: false });
    const message = await writer.encrypt('refused', { encryptionContext: { tenant: 'aaaa' } });
    const changed = Buffer.from(message);
    changed.write('bbbb', message.indexOf(Buffer.from('aaaa'))); // the KMS refuses it: KMS.2201
    // silent (hedged past after 50 ms) → the service (400) → failing must never be called.
    const reader = new EnvelopeClient({
      kms: kms.kms({ endpoints: [silent, kms.service.service.url, failing], timeoutMs: 5000, hedgeDelayMs: 50 }),
      cache: false,
    });
    const error = await reader.decrypt(changed).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KmsRequestError);
    expect(error).toMatchObject({ status: 400, code: 'KMS.2201' });
    expect(reader.metrics.kmsCallsByOperation).toEqual({ 'decrypt-datakey': 2 });
  });
});
