import fs from 'node:fs';
import path from 'node:path';

/**
 * The service (src/main.ts) on a slow disk, for the audit durability tests: run as the script of
 * spawnScript instead of main.ts. Every write to an audit chain (`audit.log`, `audit-<n>.log`) is
 * held for AUDIT_WRITE_DELAY_MS first, whether it is made synchronously (the thread then blocks, as
 * on a disk that stalls) or on the thread pool; so a response sent before its record is written
 * reaches the client before the record reaches the file, every time, not once in a while.
 *
 * After each fdatasync(2) of a chain that succeeds, the chain's length then is written to
 * `<chain>.synced`: a test reads it when a response arrives to see whether the record had been
 * synced by then (strace-free), since the service cannot have released the response before the
 * callback that writes it returned.
 */

const CHAIN = /^audit(-\d+)?\.log$/;
const delayMs = Number(process.env.AUDIT_WRITE_DELAY_MS ?? '0');
const chains = new Map<number, string>();

const { openSync, closeSync, write, writeSync, fdatasync } = fs;

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

fs.openSync = ((file: fs.PathLike, flags: fs.OpenMode = 'r', mode?: fs.Mode | null) => {
  const fd = openSync(file, flags, mode);
  // Opened for appending: the chain's writer (start-up opens it 'r+' once, to read its end).
  if (typeof file === 'string' && CHAIN.test(path.basename(file)) && flags === 'a') chains.set(fd, file);
  return fd;
}) as typeof fs.openSync;

fs.closeSync = ((fd: number) => {
  chains.delete(fd);
  closeSync(fd);
}) as typeof fs.closeSync;

fs.writeSync = ((fd: number, ...rest: unknown[]) => {
  if (chains.has(fd)) sleep(delayMs);
  return (writeSync as (fd: number, ...rest: unknown[]) => number)(fd, ...rest);
}) as typeof fs.writeSync;

fs.write = ((fd: number, ...rest: unknown[]) => {
  const go = (): void => (write as (fd: number, ...rest: unknown[]) => void)(fd, ...rest);
  if (chains.has(fd)) setTimeout(go, delayMs);
  else go();
}) as typeof fs.write;

fs.fdatasync = ((fd: number, callback: fs.NoParamCallback) => {
  fdatasync(fd, (error) => {
    const file = chains.get(fd);
    if (!error && file !== undefined) {
      // Renamed into place: a test reading it meanwhile sees the old length or the new, never none.
      fs.writeFileSync(`${file}.synced.tmp`, String(fs.fstatSync(fd).size));
      fs.renameSync(`${file}.synced.tmp`, `${file}.synced`);
    }
    callback(error);
  });
}) as typeof fs.fdatasync;

require('../../src/main');
