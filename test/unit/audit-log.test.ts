import fs from 'node:fs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { appendDurably, AuditLog, verifyAuditLog, type AuditSync } from '../../src/audit/audit-log';
import { operationRecord } from '../helpers/audit-record';

const record = operationRecord;

describe.each(['always', 'batch'] as AuditSync[])('the audit log, KMS_AUDIT_SYNC=%s (group commit)', (sync) => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-audit-log-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("writes one turn's records as one batch, and those of the turns while it is written as the next, each told once its batch is done", async () => {
    const file = path.join(dir, 'audit.log');
    const batches: boolean[] = [];
    const log = new AuditLog(file, { sync, observer: { wrote: (_seconds, failed) => batches.push(failed) } });
    const lines = (): number => readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
    const first = ['a', 'b', 'c'].map((id) => log.append(record(id)));
    // Queued after the first batch's start (the first append queued it): that batch is being written.
    const second = await new Promise<Array<Promise<Error | undefined>>>((resolve) => setImmediate(() => resolve(['d', 'e', 'f', 'g'].map((id) => log.append(record(id))))));
    expect(await Promise.all(first)).toEqual([undefined, undefined, undefined]);
    expect(lines()).toBeGreaterThanOrEqual(3);
    expect(await Promise.all(second)).toEqual([undefined, undefined, undefined, undefined]);
    expect(lines()).toBe(7);
    expect(batches).toEqual([false, false]);
    expect(log.head).toMatchObject({ records: 7 });
    await log.close();
    expect(verifyAuditLog(file)).toMatchObject({ ok: true, records: 7 });
  });

  it('tells the records of a batch that could not be written, keeps them, and refuses until an attempt succeeds', async () => {
    // /dev/full takes the file open and refuses every write (ENOSPC), as a full disk does.
    const log = new AuditLog('/dev/full', { sync });
    const failure = await log.append(record('lost'));
    expect(failure).toMatchObject({ code: 'ENOSPC' });
    expect(log.writable).toBe(false);
    expect(() => log.checkWritable()).toThrow(expect.objectContaining({ code: 'KMS.0104' }));
    // Appended while the log cannot be written: told at once, kept for the next attempt.
    expect(await log.append(record('later'))).toMatchObject({ code: 'ENOSPC' });
    await expect(log.close()).rejects.toThrow('could not be written before closing');
  });
});

describe('the audit log after a failed fdatasync (KMS_AUDIT_SYNC=always)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-audit-log-'));
  });
  // The module's own property (the code under test reads fs.fdatasync when it calls it).
  const realFdatasync = fs.fdatasync;
  afterEach(() => {
    fs.fdatasync = realFdatasync;
    rmSync(dir, { recursive: true, force: true });
  });

  it('never counts an operation as audited again in this process: a later fdatasync that succeeds does not vouch for the lines the failed one covered', async () => {
    const log = new AuditLog(path.join(dir, 'audit.log'), { sync: 'always' });
    // Linux answers a writeback error once (EIO), and the next fdatasync of the same file succeeds.
    let failed = false;
    fs.fdatasync = ((fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
      if (failed) return realFdatasync(fd, callback);
      failed = true;
      callback(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    }) as typeof fs.fdatasync;
    expect(await log.append(record('unsynced'))).toMatchObject({ code: 'EIO' });
    expect(log.writable).toBe(false);
    // Asked again and again (each operation, each readiness probe): still refused, never retried into a success.
    for (let attempt = 0; attempt < 3; attempt++) {
      expect(() => log.checkWritable()).toThrow(expect.objectContaining({ code: 'KMS.0104' }));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(log.writable).toBe(false);
    expect(await log.append(record('after'))).toMatchObject({ code: 'EIO' });
    // Nor is its head offered as synced for an anchor.
    expect(log.syncNow()).toBe(false);
    await log.close().catch(() => undefined);
  });
});

describe('appendDurably (the command-line tool\'s and the first start\'s credential changes)', () => {
  let dir: string;
  const realFsyncSync = fs.fsyncSync;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-audit-log-'));
  });
  afterEach(() => {
    fs.fsyncSync = realFsyncSync;
    rmSync(dir, { recursive: true, force: true });
  });

  it('extends the chain, or, when the sync fails, leaves the file as it was: no record of a change that is rolled back', () => {
    const file = path.join(dir, 'audit-cli.log');
    appendDurably(file, record('kept'));
    const before = readFileSync(file, 'utf8');
    fs.fsyncSync = () => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    };
    expect(() => appendDurably(file, record('rolled-back'))).toThrow('EIO');
    fs.fsyncSync = realFsyncSync;
    expect(readFileSync(file, 'utf8')).toBe(before);
    appendDurably(file, record('next'));
    expect(verifyAuditLog(file)).toMatchObject({ ok: true, records: 2 });
    expect(readFileSync(file, 'utf8')).not.toContain('rolled-back');
  });
});

describe('the audit log after a failed write', () => {
  let dir: string;
  const realWrite = fs.write;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-audit-log-'));
  });
  afterEach(() => {
    fs.write = realWrite;
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes what the failure left first, then what came after, in order, and the chain stays whole', async () => {
    const file = path.join(dir, 'audit.log');
    const log = new AuditLog(file, { sync: 'always' });
    expect(await log.append(record('first'))).toBeUndefined();
    // The next write(2) takes part of the batch, then the disk is full; the one after succeeds.
    let calls = 0;
    fs.write = ((fd: number, buffer: Buffer, offset: number, length: number, position: null, callback: (error: NodeJS.ErrnoException | null, bytes: number) => void) => {
      calls++;
      if (calls === 1) return realWrite(fd, buffer, offset, Math.min(length, 10), position, callback);
      if (calls === 2) return callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }), 0);
      return realWrite(fd, buffer, offset, length, position, callback);
    }) as unknown as typeof fs.write;
    const failed = [log.append(record('torn-a')), log.append(record('torn-b'))];
    expect(await Promise.all(failed)).toEqual([expect.objectContaining({ code: 'ENOSPC' }), expect.objectContaining({ code: 'ENOSPC' })]);
    expect(() => log.checkWritable()).toThrow(expect.objectContaining({ code: 'KMS.0104' }));
    const meanwhile = log.append(record('meanwhile'));
    // The attempt checkWritable started succeeds: new operations are taken again.
    for (let tries = 0; !log.writable && tries < 200; tries++) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(log.writable).toBe(true);
    expect(() => log.checkWritable()).not.toThrow();
    expect(await log.append(record('after'))).toBeUndefined();
    await meanwhile;
    await log.close();
    const ids = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { request_id: string }).request_id);
    expect(ids).toEqual(['first', 'torn-a', 'torn-b', 'meanwhile', 'after']);
    expect(verifyAuditLog(file)).toMatchObject({ ok: true, records: 5 });
  });
});
