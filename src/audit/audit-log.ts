import { hash } from 'node:crypto';
import { KmsError } from '../errors';
import type { AuditSink } from './audit-sink';
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * The audit trail: one JSON line per request that reached the KMS rules, appended to a file and
 * hash-chained. Each line carries `prev`, the hash of the line before (64 zeros for the first), and
 * `hash` = SHA-256(prev + "\n" + the line's JSON without `hash`). Editing or removing a line breaks
 * the chain at that point; `verifyAuditLog` finds where.
 *
 * Records name who, what, which key, and how it ended; never a secret, a data key or a plaintext.
 */

export interface AuditRecord {
  /** ISO 8601 time the request arrived. */
  readonly time: string;
  readonly request_id: string;
  readonly principal: { readonly kind: string; readonly id: string };
  readonly project_id: string;
  /** The operation, e.g. "create-datakey". */
  readonly action: string;
  /** The permission it needs, e.g. "kms:dek:create". */
  readonly permission: string;
  readonly key_id: string | null;
  readonly status: number;
  /** "OK", or the KMS error code the request ended with. */
  readonly result: string;
  readonly latency_ms: number;
  readonly client: string | null;
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

const CHAIN_FILE = /^audit(-\d+)?\.log$/;

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

/**
 * The `hash` of the file's last complete line, read from its end. A crash or power cut during a
 * write can leave an incomplete last line: it is moved to `<file>.partial-<time>` and cut off, so
 * the chain goes on from the last whole record (and verify still passes).
 */
function lastHash(file: string): string {
  if (!existsSync(file)) return GENESIS_HASH;
  const fd = openSync(file, 'r+');
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return GENESIS_HASH;
    const length = Math.min(size, TAIL_BYTES);
    const tail = Buffer.alloc(length);
    readSync(fd, tail, 0, length, size - length);
    let end = length;
    if (tail[length - 1] !== 0x0a) {
      const lastNewline = tail.lastIndexOf(0x0a);
      if (lastNewline < 0 && size > length) throw new Error(`the audit log ends in a line longer than ${TAIL_BYTES} bytes: ${file}`);
      end = lastNewline + 1;
      writeFileSync(`${file}.partial-${Date.now()}`, tail.subarray(end));
      ftruncateSync(fd, size - (length - end));
      if (end === 0) return GENESIS_HASH; // the file held one incomplete line and nothing else
    }
    const lines = tail.subarray(0, end).toString('utf8').split('\n').filter((line) => line.trim() !== '');
    const last = lines[lines.length - 1];
    const hash = last ? (JSON.parse(last) as { hash?: unknown }).hash : undefined;
    if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) throw new Error(`the audit log's last line has no hash: ${file}`);
    return hash;
  } finally {
    closeSync(fd);
  }
}

export class AuditLog implements AuditSink {
  private fd: number | undefined;
  private prev: string;
  private pending: string[] = [];
  private flushScheduled = false;
  /** The last write failure, until a write succeeds again: new records are refused meanwhile. */
  private failure: unknown;

  constructor(file: string) {
    this.prev = lastHash(file);
    this.fd = openSync(file, 'a', 0o600);
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
  append(record: AuditRecord): void {
    if (this.fd === undefined) throw new Error('the audit log is closed');
    // The record's JSON with `prev` added last, as JSON.stringify({ ...record, prev }) writes it.
    const withPrev = `${JSON.stringify(record).slice(0, -1)},"prev":"${this.prev}"}`;
    const lineHash = chainHash(this.prev, withPrev);
    this.pending.push(`${withPrev.slice(0, -1)},"hash":"${lineHash}"}\n`);
    this.prev = lineHash;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes the pending lines now; on failure they stay pending, in order, for the next attempt. */
  flush(): void {
    this.flushScheduled = false;
    if (this.fd === undefined || this.pending.length === 0) return;
    const batch = Buffer.from(this.pending.join(''), 'utf8');
    this.pending = [];
    let written = 0;
    try {
      while (written < batch.length) written += writeSync(this.fd, batch, written, batch.length - written);
      this.failure = undefined;
    } catch (error) {
      this.failure = error;
      this.pending.unshift(batch.subarray(written).toString('utf8'));
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
  | { readonly ok: true; readonly records: number }
  | { readonly ok: false; readonly records: number; readonly line: number; readonly reason: string };

/** Checks the whole chain; reports the first line (1-based) where it breaks. */
export function verifyAuditLog(file: string): AuditVerdict {
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
  }
  return { ok: true, records: lines.length };
}
