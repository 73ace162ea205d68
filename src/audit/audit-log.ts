import { hash } from 'node:crypto';
import { KmsError } from '../errors';
import type { AuditEntry } from './audit-records';
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * The audit trail: one JSON line per event (audit-records.ts), appended to a file and
 * hash-chained. Each line carries `prev`, the hash of the line before (64 zeros for the first), and
 * `hash` = SHA-256(prev + "\n" + the line's JSON without `hash`). Editing or removing a line breaks
 * the chain at that point; `verifyAuditLog` finds where. Cutting lines from the end leaves a
 * shorter chain that is whole: only a head kept outside the data directory ({@link ChainHead},
 * logged periodically) shows that, with `verifyAuditLog(file, expected)`.
 */

export type { AuditEntry, AuditRecord } from './audit-records';

/** Where a chain ends: its number of records and the hash of its last one (GENESIS_HASH for none). */
export interface ChainHead {
  readonly records: number;
  readonly hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/**
 * Each process that serves requests writes its own chain, so that no record waits for another
 * process: `audit.log` for a single process, `audit-<n>.log` for cluster worker n (a restarted
 * worker continues its slot's chain). Records carry their time and request id; read the files
 * together, ordered by time.
 */
export function auditLogFile(dataDir: string, worker?: number): string {
  return path.join(dataDir, worker === undefined ? 'audit.log' : `audit-${worker}.log`);
}

/** The chain of the command-line tool's credential changes, beside the serving processes' chains. */
export function cliAuditLogFile(dataDir: string): string {
  return path.join(dataDir, 'audit-cli.log');
}

const CHAIN_FILE = /^audit(-\d+|-cli)?\.log$/;

/** The chain files of a data directory, in name order. */
export function auditLogFiles(dataDir: string): string[] {
  return readdirSync(dataDir)
    .filter((name) => CHAIN_FILE.test(name))
    .sort()
    .map((name) => path.join(dataDir, name));
}

export function chainHash(prev: string, lineWithoutHash: string): string {
  return hash('sha256', `${prev}\n${lineWithoutHash}`, 'hex');
}

const TAIL_BYTES = 65_536;

/** Newlines in the first `size` bytes of the file, read in large blocks: its number of records. */
function countLines(fd: number, size: number): number {
  const block = Buffer.alloc(Math.min(size, 1 << 20));
  let lines = 0;
  for (let position = 0; position < size; ) {
    const read = readSync(fd, block, 0, Math.min(block.length, size - position), position);
    if (read === 0) break;
    for (let at = block.indexOf(0x0a); at >= 0 && at < read; at = block.indexOf(0x0a, at + 1)) lines++;
    position += read;
  }
  return lines;
}

/**
 * Where the file's chain ends: the `hash` of its last complete line, read from its end, and its
 * number of lines (the whole file is read once for that, at start-up). A crash or power cut during
 * a write can leave an incomplete last line: it is moved to `<file>.partial-<time>` and cut off, so
 * the chain goes on from the last whole record (and verify still passes).
 */
function chainEnd(file: string): ChainHead {
  const empty: ChainHead = { records: 0, hash: GENESIS_HASH };
  if (!existsSync(file)) return empty;
  const fd = openSync(file, 'r+');
  try {
    let size = fstatSync(fd).size;
    if (size === 0) return empty;
    const length = Math.min(size, TAIL_BYTES);
    const tail = Buffer.alloc(length);
    readSync(fd, tail, 0, length, size - length);
    let end = length;
    if (tail[length - 1] !== 0x0a) {
      const lastNewline = tail.lastIndexOf(0x0a);
      if (lastNewline < 0 && size > length) throw new Error(`the audit log ends in a line longer than ${TAIL_BYTES} bytes: ${file}`);
      end = lastNewline + 1;
      writeFileSync(`${file}.partial-${Date.now()}`, tail.subarray(end));
      size -= length - end;
      ftruncateSync(fd, size);
      if (end === 0) return empty; // the file held one incomplete line and nothing else
    }
    const lines = tail.subarray(0, end).toString('utf8').split('\n').filter((line) => line.trim() !== '');
    const last = lines[lines.length - 1];
    const hash = last ? (JSON.parse(last) as { hash?: unknown }).hash : undefined;
    if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) throw new Error(`the audit log's last line has no hash: ${file}`);
    return { records: countLines(fd, size), hash };
  } finally {
    closeSync(fd);
  }
}

/**
 * What a chain reports of each write(2) batch, for the metrics (src/metrics implements it; the
 * audit log knows no metrics library). Called synchronously: it must be cheap and must not throw.
 */
export interface AuditObserver {
  /** One batch was written (or, with `failed`, a write failed and what it left waits for the next): how long it took, in seconds. */
  wrote(seconds: number, failed: boolean): void;
}

/** One process's chain: it appends, batches the writes of one event-loop turn, and knows its head. */
export class AuditLog {
  private fd: number | undefined;
  private prev: string;
  /** Lines appended since the last write. */
  private pending: string[] = [];
  /** Bytes a failed write left unwritten: they go out first, before `pending`. */
  private carry: Buffer | undefined;
  /** The hash of every line not yet wholly on disk, in order (the carry's lines, then pending's). */
  private unwritten: string[] = [];
  /** The last line wholly on disk. */
  private written: ChainHead;
  private flushScheduled = false;
  /** The last write failure, until a write succeeds again: new operations are refused meanwhile. */
  private failure: unknown;

  constructor(
    readonly file: string,
    private readonly observer?: AuditObserver,
  ) {
    this.written = chainEnd(file);
    this.prev = this.written.hash;
    this.fd = openSync(file, 'a', 0o600);
  }

  /** Where the chain on disk ends now: what an operator keeps outside to detect a cut tail. */
  get head(): ChainHead {
    return this.written;
  }

  /** False once a write has failed, until one succeeds again. */
  get writable(): boolean {
    return this.fd !== undefined && this.failure === undefined;
  }

  /**
   * Whether a record appended now can be written: the last write succeeded, or a retry of what it
   * left pending does. Asked before an operation runs, so that an operation is refused (503
   * KMS.0104) rather than done unaudited, or done and then answered with an error.
   */
  checkWritable(): void {
    if (this.fd === undefined) throw new KmsError('KMS.0104', { cause: new Error('the audit log is closed') });
    if (this.failure === undefined) return;
    this.flush();
    if (this.failure !== undefined) throw new KmsError('KMS.0104', { cause: new Error('the audit log cannot be written', { cause: this.failure }) });
  }

  /**
   * Appends one record to the chain. Lines are chained at once, in order, and written in batches:
   * every record appended during one turn of the event loop goes out in a single write(2) at the end
   * of that turn, and close() writes whatever is left, so a clean shutdown loses nothing. (A crash
   * can lose the records of the turn it interrupts; the chain on disk stays whole.)
   *
   * It does not throw when writing fails: the record of an operation that has run is kept, in
   * order, until a write succeeds (close() fails if none does), and {@link checkWritable} refuses
   * new operations meanwhile, so what waits is bounded by the operations that were under way.
   */
  append(record: AuditEntry): void {
    if (this.fd === undefined) throw new Error('the audit log is closed');
    // The record's JSON with `prev` added last, as JSON.stringify({ ...record, prev }) writes it.
    const withPrev = `${JSON.stringify(record).slice(0, -1)},"prev":"${this.prev}"}`;
    const lineHash = chainHash(this.prev, withPrev);
    this.pending.push(`${withPrev.slice(0, -1)},"hash":"${lineHash}"}\n`);
    this.unwritten.push(lineHash);
    this.prev = lineHash;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes the pending lines now; on failure what was not written stays, in order, for the next attempt. */
  flush(): void {
    this.flushScheduled = false;
    if (this.fd === undefined || (this.pending.length === 0 && this.carry === undefined)) return;
    const fresh = Buffer.from(this.pending.join(''), 'utf8');
    const batch = this.carry ? Buffer.concat([this.carry, fresh]) : fresh;
    this.pending = [];
    this.carry = undefined;
    let written = 0;
    const started = performance.now();
    try {
      while (written < batch.length) written += writeSync(this.fd, batch, written, batch.length - written);
      this.failure = undefined;
    } catch (error) {
      this.failure = error;
      this.carry = batch.subarray(written);
    }
    this.observer?.wrote((performance.now() - started) / 1000, this.failure !== undefined);
    // Every line ends in the one newline it holds: the newlines written count the lines now whole on disk.
    let whole = 0;
    for (let at = batch.indexOf(0x0a); at >= 0 && at < written; at = batch.indexOf(0x0a, at + 1)) whole++;
    if (whole > 0) {
      this.written = { records: this.written.records + whole, hash: this.unwritten[whole - 1]! };
      this.unwritten.splice(0, whole);
    }
  }

  /**
   * Makes the lines written so far durable (fsync); false when that failed or the file cannot be
   * synced (a device or a pipe), so that the caller does not claim what it cannot know.
   */
  sync(): boolean {
    if (this.fd === undefined) return true;
    try {
      fsyncSync(this.fd);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    if (this.failure !== undefined) throw new Error('the audit log could not be written before closing', { cause: this.failure });
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }
}

export type AuditVerdict =
  | { readonly ok: true; readonly records: number; readonly head: string }
  | { readonly ok: false; readonly records: number; readonly line: number; readonly reason: string };

/**
 * Checks the whole chain; reports the first line (1-based) where it breaks. With `expected` (a
 * head kept outside the data directory), also that the chain still reaches it: that line
 * `expected.records` exists and has the hash `expected.hash`, so lines cut from the end, or a chain
 * rewritten from some line on, are found too.
 */
export function verifyAuditLog(file: string, expected?: ChainHead): AuditVerdict {
  const lines = readFileSync(file, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let prev = GENESIS_HASH;
  for (let i = 0; i < lines.length; i++) {
    const fail = (reason: string): AuditVerdict => ({ ok: false, records: i, line: i + 1, reason });
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(lines[i]!) as Record<string, unknown>;
    } catch {
      return fail('not a JSON record');
    }
    const { hash, ...rest } = parsed;
    if (rest.prev !== prev) return fail('prev does not match the hash of the line before: a line was removed, added or reordered');
    if (hash !== chainHash(prev, JSON.stringify(rest))) return fail('hash does not match the record: the line was edited');
    prev = hash as string;
    if (expected && i + 1 === expected.records && prev !== expected.hash) {
      return { ok: false, records: i + 1, line: i + 1, reason: 'the line at the expected head has another hash: the chain was rewritten up to there' };
    }
  }
  if (expected && lines.length < expected.records) {
    return {
      ok: false,
      records: lines.length,
      line: lines.length + 1,
      reason: `the chain ends before the expected head (record ${expected.records}): lines were cut from its end`,
    };
  }
  return { ok: true, records: lines.length, head: prev };
}

/** A head as operators keep it and pass it to `audit verify --expect-head`: "RECORDS:HASH". */
export function formatHead(head: ChainHead): string {
  return `${head.records}:${head.hash}`;
}

/** Reads "RECORDS:HASH"; undefined when it is not one. */
export function parseHead(text: string): ChainHead | undefined {
  const match = /^(\d{1,15}):([0-9a-f]{64})$/.exec(text.trim());
  return match ? { records: Number(match[1]), hash: match[2]! } : undefined;
}
