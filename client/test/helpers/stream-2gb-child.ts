/**
 * The 2 GiB stream, in a process of its own (started by stream-2gb.test.ts with --expose-gc) so
 * that its resident set is the client's alone. It prints one JSON line: bytes received, chunks that
 * differed from what was sent, and the RSS at the start and its highest value afterwards.
 *
 * RSS is sampled after a full garbage collection every 64 MiB of output: V8 frees a stream's spent
 * Buffers only when it collects, and lets up to ~64 MiB of such garbage pile up between
 * collections, so raw samples would measure the collector's pacing, not what the stream holds.
 * The baseline is taken after a 64 MiB warm-up stream through the same pipeline, once V8 has grown
 * its heap (its young generation alone grows to tens of MiB under this allocation rate) to what any
 * stream needs: what the 2 GiB stream adds over that is what grows with the data. The RSS before
 * the warm-up is reported too (coldBaseline).
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvelopeClient } from '../../src';

const TOTAL = Number(process.env.STREAM_BYTES ?? 2 * 1024 ** 3);
const WARM_UP = 64 * 1024 * 1024;
const CHUNK = 64 * 1024;
const SAMPLE_EVERY = 64 * 1024 * 1024;
const FILLER = Buffer.alloc(CHUNK, 0x5a);
const exposedGc = (globalThis as { gc?: () => void }).gc;
/** Two full collections: the second also frees what the first one's finalizers released (cipher contexts). */
const gc = exposedGc
  ? (): void => {
      exposedGc();
      exposedGc();
    }
  : undefined;

/** `total` bytes made on demand: each chunk carries its index in its first 4 bytes; none is kept. */
function source(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const chunk = Buffer.from(FILLER);
      chunk.writeUInt32BE(sent / CHUNK, 0);
      sent += CHUNK;
      this.push(chunk);
    },
  });
}

/** What source() sent at [offset, offset + length). */
function expectedAt(offset: number, length: number): Buffer {
  const expected = Buffer.from(FILLER.subarray(0, length));
  for (let start = Math.floor(offset / CHUNK) * CHUNK; start < offset + length; start += CHUNK) {
    const header = Buffer.alloc(4);
    header.writeUInt32BE(start / CHUNK, 0);
    for (let i = 0; i < 4; i += 1) {
      const at = start + i - offset;
      if (at >= 0 && at < length) expected[at] = header[i]!;
    }
  }
  return expected;
}

async function main(): Promise<void> {
  if (!gc) throw new Error('run with --expose-gc');
  const client = new EnvelopeClient({
    kms: {
      endpoints: [process.env.KMS_ENDPOINT!],
      projectId: process.env.KMS_PROJECT_ID!,
      keyId: process.env.KMS_KEY_ID!,
      auth: { accessKey: process.env.KMS_ACCESS_KEY!, secretKey: process.env.KMS_SECRET_KEY! },
    },
    frameLength: 64 * 1024,
  });
  gc();
  const coldBaseline = process.memoryUsage().rss;
  let baseline = coldBaseline;
  let peak = 0;
  let received = 0;
  let mismatches = 0;
  const stream = async (total: number): Promise<void> => {
    received = 0;
    let nextSample = SAMPLE_EVERY;
    await pipeline(
      source(total),
      client.encryptStream({ encryptionContext: { test: '2gb' } }),
      client.decryptStream({ expectedEncryptionContext: { test: '2gb' } }),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          if (!chunk.equals(expectedAt(received, chunk.length))) mismatches += 1;
          received += chunk.length;
          if (received >= nextSample) {
            nextSample += SAMPLE_EVERY;
            gc!();
            peak = Math.max(peak, process.memoryUsage().rss);
          }
          done();
        },
      }),
    );
  };
  await stream(WARM_UP);
  gc();
  baseline = process.memoryUsage().rss;
  const warmUpPeak = peak;
  peak = baseline;
  await stream(TOTAL);
  process.stdout.write(`${JSON.stringify({ received, mismatches, coldBaseline, warmUpPeak, baseline, peak })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
