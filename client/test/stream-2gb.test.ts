/**
 * A 2 GiB stream through encryptStream → decryptStream, under a memory ceiling: the process's
 * resident set may grow by at most 64 MiB over its size before the stream, sampled on every chunk.
 * Its own file, with a generous limit: on a loaded 2-vCPU machine it takes a minute or two.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvelopeClient } from '../src';
import { startClientTestService, type ClientTestService } from './helpers/kms';

const TOTAL = 2 * 1024 ** 3;
const CHUNK = 64 * 1024;
const CEILING = 64 * 1024 * 1024;

let kms: ClientTestService;
beforeAll(async () => {
  kms = await startClientTestService();
});
afterAll(async () => {
  await kms?.stop();
});

/** TOTAL bytes made on demand: each chunk differs (its index is written into it), none is kept. */
function source(): Readable {
  let sent = 0;
  const block = Buffer.alloc(CHUNK, 0x5a);
  return new Readable({
    read() {
      if (sent >= TOTAL) {
        this.push(null);
        return;
      }
      const chunk = Buffer.from(block);
      chunk.writeUInt32BE(sent / CHUNK, 0);
      sent += CHUNK;
      this.push(chunk);
    },
  });
}

const FILLER = Buffer.alloc(CHUNK, 0x5a);

/** What source() sent at [offset, offset + length): the filler, with each chunk's index in its first 4 bytes. */
function expectedAt(offset: number, length: number): Buffer {
  const expected = Buffer.from(FILLER.subarray(0, length));
  for (let start = Math.ceil(offset / CHUNK) * CHUNK; start < offset + length; start += CHUNK) {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(start / CHUNK, 0);
    for (let i = 0; i < 4; i += 1) if (start + i >= offset && start + i < offset + length) expected[start + i - offset] = header[i]!;
  }
  // A chunk starting before offset may still have header bytes inside the range.
  const previous = Math.floor(offset / CHUNK) * CHUNK;
  if (previous < offset && offset - previous < 4) {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(previous / CHUNK, 0);
    for (let i = offset - previous; i < 4 && previous + i < offset + length; i += 1) expected[previous + i - offset] = header[i]!;
  }
  return expected;
}

test('2 GiB round-trips with RSS growth under 64 MiB', async () => {
  const client = new EnvelopeClient({ kms: kms.kms(), frameLength: 64 * 1024 });
  // Warm up (the data key, the code paths) before the baseline is taken.
  await client.decrypt(await client.encrypt(Buffer.alloc(CHUNK)));
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  let received = 0;
  let mismatches = 0;
  await pipeline(
    source(),
    client.encryptStream({ encryptionContext: { test: '2gb' } }),
    client.decryptStream({ expectedEncryptionContext: { test: '2gb' } }),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        received += chunk.length;
        if (!chunk.equals(expectedAt(received - chunk.length, chunk.length))) mismatches += 1;
        peak = Math.max(peak, process.memoryUsage().rss);
        done();
      },
    }),
  );
  expect(received).toBe(TOTAL);
  expect(mismatches).toBe(0);
  process.stdout.write(`2 GiB stream: RSS growth ${((peak - baseline) / 1024 ** 2).toFixed(1)} MiB\n`);
  expect(peak - baseline).toBeLessThan(CEILING);
}, 900_000);
