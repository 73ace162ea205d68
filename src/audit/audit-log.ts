import { hash } from 'node:crypto';
import { KmsError } from '../errors';
import type { AuditEntry } from './audit-records';
import { closeSync, existsSync, fdatasync, fstatSync, fsync, fsyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, write, writeFileSync, writeSync } from 'node:fs';
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
      writeFileSync(`${file}.partial-${Date.now()}`, tail.subarray(end), { mode: 0o600 });
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
 * What a chain reports of each batch it writes, for the metrics (src/metrics implements it; the
 * audit log knows no metrics library). Called synchronously: it must be cheap and must not throw.
 */
export interface AuditObserver {
  /**
   * One batch was written, and with sync `always` synced (or, with `failed`, the write or the sync
   * failed and what it left waits for the next attempt): how long it took, in seconds.
   */
  wrote(seconds: number, failed: boolean): void;
}

/**
 * When a chain's batch counts as done: `always`, once write(2) and fdatasync(2) returned (on the
 * disk: a power cut keeps it); `batch`, once write(2) returned (in the file: a crash of the process
 * keeps it, a power cut or a kernel crash can take back what the kernel had not written yet).
 */
export type AuditSync = 'always' | 'batch';

export const AUDIT_SYNC_POLICIES: readonly AuditSync[] = ['always', 'batch'];

/** What {@link AuditLog.append} resolves with: undefined once the record is done, else the failure that kept it from being so. */
export type AuditOutcome = Error | undefined;

export interface AuditLogOptions {
  readonly observer?: AuditObserver;
  /** Default `always`. */
  readonly sync?: AuditSync;
  /** The instance writing the chain (KMS_INSTANCE_ID): each line names it, see {@link chainedLine}. */
  readonly instance?: string;
}

/** The records of one batch, waiting for its write: they are told together. */
class Batch {
  readonly done: Promise<AuditOutcome>;
  settle!: (outcome: AuditOutcome) => void;
  constructor() {
    this.done = new Promise((resolve) => (this.settle = resolve));
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * One process's chain: it appends, writes the records of each event-loop turn as one batch (one
 * write(2), then one fdatasync(2) with sync `always`) on libuv's thread pool, off the event loop,
 * and tells the batch's records when it is done. While a batch is written, the records of the turns
 * after it gather into the next one. It knows the head of what it wrote.
 */
export class AuditLog {
  private fd: number | undefined;
  private prev: string;
  private readonly sync: AuditSync;
  private readonly observer: AuditObserver | undefined;
  /** `,"instance":"…"`, or nothing: what every line of this chain carries after its record. */
  private readonly instanceField: string;
  /** Lines appended since the last batch began. */
  private pending: string[] = [];
  /** Who waits for the pending lines: undefined while none does. */
  private next: Batch | undefined;
  /** Bytes a failed write left unwritten: they go out first, before `pending`. */
  private carry: Buffer | undefined;
  /** The hash of every line not yet wholly in the file, in order (the carry's lines, then pending's). */
  private unwritten: string[] = [];
  /** The last line wholly in the file. */
  private written: ChainHead;
  private flushScheduled = false;
  /** A batch is being written (and synced): the next waits for it. */
  private writing = false;
  private readonly idleWaiters: Array<() => void> = [];
  /** The last write or sync failure, until an attempt succeeds again: new operations are refused meanwhile. */
  private failure: Error | undefined;
  /**
   * A failed fdatasync, for good: Linux reports a writeback error once and marks the pages it could
   * not write clean, so a later fdatasync that succeeds says nothing of the lines the failed one
   * covered (they may be gone from the disk, the chain cut in its middle). As PostgreSQL does after
   * a failed fsync, nothing is answered as audited again in this process; a restart reads the file
   * as it is on disk.
   */
  private syncFailure: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly file: string,
    options: AuditLogOptions = {},
  ) {
    this.sync = options.sync ?? 'always';
    this.observer = options.observer;
    this.instanceField = instanceField(options.instance);
    this.written = chainEnd(file);
    this.prev = this.written.hash;
    this.fd = openSync(file, 'a', 0o600);
  }

  /** Where the chain in the file ends now: what an operator keeps outside to detect a cut tail. */
  get head(): ChainHead {
    return this.written;
  }

  /** False once a write (or a sync) has failed, until one succeeds again. */
  get writable(): boolean {
    return this.fd !== undefined && this.failure === undefined;
  }

  /**
   * Whether a record appended now can be written: the last attempt succeeded. Asked before an
   * operation runs, so that an operation is refused (503 KMS.0104) rather than done unaudited.
   * After a failure it starts one more attempt (of what the failure left) in the background, and
   * refuses until an attempt succeeds.
   */
  checkWritable(): void {
    if (this.fd === undefined) throw new KmsError('KMS.0104', { cause: new Error('the audit log is closed') });
    const failure = this.failure;
    if (failure === undefined) return;
    if (this.syncFailure !== undefined) {
      throw new KmsError('KMS.0104', { cause: new Error('the audit log could not be synced; restart the service', { cause: this.syncFailure }) });
    }
    if (!this.writing) this.flush();
    throw new KmsError('KMS.0104', { cause: new Error('the audit log cannot be written', { cause: failure }) });
  }

  /**
   * Appends one record to the chain: chained at once, in order, and written with the other records
   * of this event-loop turn after it. Resolves (never rejects) once the record's batch is done (see
   * {@link AuditSync}), or with the failure that kept it from being so: the record then stays, in
   * order, for the next attempt (close() fails if none succeeds), and {@link checkWritable} refuses
   * new operations meanwhile, so what waits is bounded by the operations that were under way.
   * A caller that does not wait (failed authentications) lets the record go out with its batch.
   */
  append(record: AuditEntry): Promise<AuditOutcome> {
    if (this.fd === undefined) throw new Error('the audit log is closed');
    const { line, hash: lineHash } = chainedLine(this.prev, record, this.instanceField);
    this.pending.push(line);
    this.unwritten.push(lineHash);
    this.prev = lineHash;
    // After a failure, and until an attempt (started by checkWritable) succeeds, nothing is done.
    if (this.failure !== undefined && !this.writing) return Promise.resolve(this.failure);
    this.next ??= new Batch();
    if (!this.flushScheduled && !this.writing) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return this.next.done;
  }

  /** Starts writing what is pending (and what a failure left) as one batch, unless one is being written. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.fd === undefined || this.writing) return;
    if (this.pending.length === 0 && this.carry === undefined && this.failure === undefined) return;
    const fd = this.fd;
    const fresh = Buffer.from(this.pending.join(''), 'utf8');
    const batch = this.carry ? Buffer.concat([this.carry, fresh]) : fresh;
    const waiting = this.next;
    this.pending = [];
    this.next = undefined;
    this.carry = undefined;
    this.writing = true;
    const started = performance.now();
    writeAll(fd, batch, 0, (written, writeError) => {
      if (writeError || this.sync === 'batch') return this.finish(batch, written, writeError, started, waiting);
      fdatasync(fd, (syncError) => {
        if (syncError) this.syncFailure = syncError;
        this.finish(batch, written, syncError ?? undefined, started, waiting);
      });
    });
  }

  private finish(batch: Buffer, written: number, error: Error | undefined, started: number, waiting: Batch | undefined): void {
    this.writing = false;
    this.failure = error;
    if (written < batch.length) this.carry = batch.subarray(written);
    this.observer?.wrote((performance.now() - started) / 1000, error !== undefined);
    this.countWritten(batch, written);
    waiting?.settle(error);
    if (error !== undefined) {
      // The lines appended meanwhile are not tried now (a full disk would be hammered): they wait
      // for the attempt checkWritable starts, and their requests are told now.
      this.next?.settle(error);
      this.next = undefined;
    } else if (this.pending.length > 0) {
      this.flush();
    }
    if (!this.writing) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Every line ends in the one newline it holds: the newlines written count the lines now whole in the file. */
  private countWritten(batch: Buffer, written: number): void {
    let whole = 0;
    for (let at = batch.indexOf(0x0a); at >= 0 && at < written; at = batch.indexOf(0x0a, at + 1)) whole++;
    if (whole > 0) {
      this.written = { records: this.written.records + whole, hash: this.unwritten[whole - 1]! };
      this.unwritten.splice(0, whole);
    }
  }

  /**
   * Makes the lines written so far durable (fsync, on the thread pool) and resolves with the head
   * they end at, or undefined when that failed or the file cannot be synced (a device or a pipe),
   * so that the caller does not claim what it cannot know.
   */
  syncedHead(): Promise<ChainHead | undefined> {
    const head = this.written;
    const fd = this.fd;
    if (this.syncFailure !== undefined) return Promise.resolve(undefined);
    if (fd === undefined) return Promise.resolve(head);
    return new Promise((resolve) => fsync(fd, (error) => resolve(error ? undefined : head)));
  }

  /**
   * Makes the lines written so far durable (fsync); false when that failed or the file cannot be
   * synced (a device or a pipe), so that the caller does not claim what it cannot know.
   */
  syncNow(): boolean {
    if (this.syncFailure !== undefined) return false;
    if (this.fd === undefined) return true;
    try {
      fsyncSync(this.fd);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Waits for the batch being written, then writes whatever is left, syncs and closes, so that a
   * clean shutdown loses nothing; fails (and stays open) if what is left cannot be written.
   */
  close(): Promise<void> {
    return (this.closing ??= this.closeWhenIdle().finally(() => (this.closing = undefined)));
  }

  private async closeWhenIdle(): Promise<void> {
    while (this.writing) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    if (this.fd === undefined) return;
    // The rest synchronously, in this one step: nothing can be appended in between.
    const fd = this.fd;
    const batch = Buffer.concat([this.carry ?? Buffer.alloc(0), Buffer.from(this.pending.join(''), 'utf8')]);
    const waiting = this.next;
    this.pending = [];
    this.next = undefined;
    this.carry = undefined;
    let written = 0;
    let failure: Error | undefined;
    try {
      while (written < batch.length) written += writeSync(fd, batch, written, batch.length - written);
      fsyncSync(fd);
    } catch (error) {
      failure = asError(error);
    }
    if (written < batch.length) this.carry = batch.subarray(written);
    this.countWritten(batch, written);
    waiting?.settle(failure);
    if (failure !== undefined) {
      this.failure = failure;
      throw new Error('the audit log could not be written before closing', { cause: failure });
    }
    this.failure = undefined;
    closeSync(fd);
    this.fd = undefined;
  }
}

/** An instance's name (KMS_INSTANCE_ID): 1 to 64 letters, digits, '.', '-' or '_', so it goes into a chain's JSON and a checkpoint's name as it is. */
export function isInstanceName(name: string): boolean {
  return /^[A-Za-z0-9._-]{1,64}$/.test(name);
}

/** The `instance` member every line of a chain carries, as it is written: `,"instance":"…"` (nothing for none). */
function instanceField(instance: string | undefined): string {
  if (instance === undefined) return '';
  // Checked where it is configured too: here because it goes into the JSON unescaped.
  if (!isInstanceName(instance)) throw new Error(`not an instance name: ${JSON.stringify(instance)}`);
  return `,"instance":"${instance}"`;
}

/**
 * One record as the chain's next line after `prev`: the instance that writes it, then `prev`, added
 * last (as JSON.stringify({ ...record, instance, prev }) writes them), then its `hash`.
 */
function chainedLine(prev: string, record: AuditEntry, instance = ''): { line: string; hash: string } {
  const withPrev = `${JSON.stringify(record).slice(0, -1)}${instance},"prev":"${prev}"}`;
  const hash = chainHash(prev, withPrev);
  return { line: `${withPrev.slice(0, -1)},"hash":"${hash}"}\n`, hash };
}

/**
 * Appends one record to the chain in `file`, written and fsync'ed before it returns, for a caller
 * that makes its change only once the record is kept (the command-line tool's, and the first start's
 * credential changes, under the database's write lock). If the write or the sync fails, the file is
 * cut back to where the chain ended, so that no record of a change that will be rolled back stays
 * in it, and the error is thrown.
 */
export function appendDurably(file: string, record: AuditEntry, instance?: string): void {
  const end = chainEnd(file);
  const fd = openSync(file, 'a', 0o600);
  try {
    const size = fstatSync(fd).size;
    const line = Buffer.from(chainedLine(end.hash, record, instanceField(instance)).line, 'utf8');
    try {
      for (let written = 0; written < line.length; ) written += writeSync(fd, line, written, line.length - written);
      fsyncSync(fd);
    } catch (error) {
      try {
        ftruncateSync(fd, size);
      } catch {
        // A torn or unsynced last line is moved aside at the next open (chainEnd); the error stands.
      }
      throw error;
    }
  } finally {
    closeSync(fd);
  }
}

/** write(2) until all of `batch` from `from` is written, on the thread pool; `written` is what was. */
function writeAll(fd: number, batch: Buffer, from: number, done: (written: number, error: Error | undefined) => void): void {
  if (from >= batch.length) return done(from, undefined);
  write(fd, batch, from, batch.length - from, null, (error, bytes) => {
    if (error) return done(from, error);
    writeAll(fd, batch, from + bytes, done);
  });
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
