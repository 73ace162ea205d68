/**
 * npm run bench:client -- [--duration S] [--stream-mb N] [--concurrency N] [--smoke] [--out FILE]
 *
 * The envelope client against the running service (node dist/main.js on the embedded SoftHSM, a
 * process of its own, every request AK/SK-signed):
 * - 1 KB records encrypted per second, with the data-key cache (default limits) and without it,
 *   with the KMS calls per second each made;
 * - stream throughput (MB/s) of encryptStream and decryptStream, beside node:crypto AES-256-GCM
 *   alone (one cipher, no framing, no KMS) over the same data, in the same run.
 * Prints a table and writes it as JSON. --smoke: a second per measurement, 16 MB streams.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { EnvelopeClient, type KmsKeyringOptions } from '../src';
import { KmsHttp } from '../src/kms-http';
import { ROOT, startServer } from '../../bench/processes';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string' },
    'stream-mb': { type: 'string' },
    concurrency: { type: 'string' },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const smoke = args.smoke === true;
const durationMs = Number(args.duration ?? (smoke ? 1 : 5)) * 1000;
const streamBytes = Number(args['stream-mb'] ?? (smoke ? 16 : 512)) * 1024 * 1024;
const concurrency = Number(args.concurrency ?? 8);
const RECORD = 1024;
const CHUNK = 64 * 1024;

interface RecordRow {
  readonly mode: string;
  readonly recordsPerSecond: number;
  readonly kmsCallsPerSecond: number;
  /** Cache hits and misses in the timed part; null without a cache. */
  readonly hits: number | null;
  readonly misses: number | null;
}

interface StreamRow {
  readonly what: string;
  readonly mbPerSecond: number;
}

/** Encrypts 1 KB records, `concurrency` at a time, for durationMs. */
async function records(mode: string, client: EnvelopeClient, cached: boolean): Promise<RecordRow> {
  const record = randomBytes(RECORD);
  const context = { table: 'orders' };
  await client.encrypt(record, { encryptionContext: context }); // warm-up, not counted
  const before = client.metrics;
  const started = performance.now();
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() - started < durationMs) {
      await client.encrypt(record, { encryptionContext: context });
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  const after = client.metrics;
  return {
    mode,
    recordsPerSecond: Math.round(done / seconds),
    kmsCallsPerSecond: Math.round(((after.kmsCalls - before.kmsCalls) / seconds) * 10) / 10,
    hits: cached ? after.hits - before.hits : null,
    misses: cached ? after.misses - before.misses : null,
  };
}

/** The same bytes every time: streamBytes in CHUNK pieces of one random block. */
function source(block: Buffer): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= streamBytes) return void this.push(null);
      sent += CHUNK;
      this.push(block);
    },
  });
}

function sink(collect?: Buffer[]): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      collect?.push(chunk);
      done();
    },
  });
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return Math.round((streamBytes / 1024 / 1024 / ((performance.now() - started) / 1000)) * 10) / 10;
}

/** encryptStream then decryptStream of the same data through a client. */
async function envelopeStreams(client: EnvelopeClient, block: Buffer, frames: string): Promise<StreamRow[]> {
  const message: Buffer[] = [];
  const encrypt = await timed(() => pipeline(source(block), client.encryptStream({ encryptionContext: { file: 'bench' } }), sink(message)));
  const decrypt = await timed(() => pipeline(Readable.from(message), client.decryptStream(), sink()));
  return [
    { what: `encryptStream (frames of ${frames})`, mbPerSecond: encrypt },
    { what: `decryptStream (frames of ${frames})`, mbPerSecond: decrypt },
  ];
}

async function streams(kms: KmsKeyringOptions): Promise<StreamRow[]> {
  const block = randomBytes(CHUNK);
  const envelope = [
    ...(await envelopeStreams(new EnvelopeClient({ kms }), block, '4 KiB (default)')),
    ...(await envelopeStreams(new EnvelopeClient({ kms, frameLength: 64 * 1024 }), block, '64 KiB')),
  ];
  const key = randomBytes(32);
  const iv = randomBytes(12);
  const sealed: Buffer[] = [];
  let tag = Buffer.alloc(0);
  const gcmEncrypt = await timed(async () => {
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    await pipeline(source(block), cipher, sink(sealed));
    tag = cipher.getAuthTag();
  });
  const gcmDecrypt = await timed(async () => {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAuthTag(tag);
    await pipeline(Readable.from(sealed), decipher, sink());
  });
  return [
    ...envelope,
    { what: 'node:crypto AES-256-GCM encrypt alone', mbPerSecond: gcmEncrypt },
    { what: 'node:crypto AES-256-GCM decrypt alone', mbPerSecond: gcmDecrypt },
  ];
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kms-client-bench-'));
  const server = await startServer('service', [path.join(ROOT, 'dist', 'main.js')], {
    KMS_DATA_DIR: dataDir,
    PORT: '0',
    KMS_LOG_LEVEL: 'info',
    KMS_ACCESS_LOG: 'off',
    SOFTHSM2_CONF: '',
  });
  try {
    const admin = JSON.parse(readFileSync(path.join(dataDir, 'admin-credentials.json'), 'utf8')) as Record<string, string>;
    const auth = { accessKey: admin.access_key!, secretKey: admin.secret_key! };
    const keyId = await createKey(server.url, admin.project_id!, auth);
    const kms: KmsKeyringOptions = { endpoints: [server.url], projectId: admin.project_id!, keyId, auth };
    const recordRows = [
      await records('cache (default limits)', new EnvelopeClient({ kms }), true),
      await records('no cache', new EnvelopeClient({ kms, cache: false }), false),
    ];
    const streamRows = await streams(kms);
    const cpu = os.cpus()[0]?.model ?? 'unknown';
    console.log(`CPU: ${cpu} (${os.cpus().length} vCPUs); ${concurrency} records in flight; ${durationMs / 1000} s each; streams of ${streamBytes / 1024 / 1024} MiB`);
    console.table(recordRows);
    console.table(streamRows);
    const report = { cpu, smoke, concurrency, durationSeconds: durationMs / 1000, streamMiB: streamBytes / 1024 / 1024, records: recordRows, streams: streamRows };
    if (args.out) writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** create-key through the client's own signed transport (the KMS's API, not the envelope). */
async function createKey(url: string, projectId: string, auth: { accessKey: string; secretKey: string }): Promise<string> {
  const http = new KmsHttp(projectId, auth);
  const answer = await http.call(url, 'create-key', { key_alias: `envelope-bench-${Date.now()}` }, { timeoutMs: 10_000 });
  const keyInfo = answer.body.key_info as { key_id?: unknown } | undefined;
  if (typeof keyInfo?.key_id !== 'string') throw new Error('create-key answered no key_id');
  return keyInfo.key_id;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
