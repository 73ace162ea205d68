/**
 * The service's log lines go to standard output in batches (src/logger.ts, issue 21): lines wait
 * in a buffer and go out in one write, at the latest after LOG_FLUSH_MS, and a flush writes all
 * of them.
 */
import { once } from 'node:events';
import fs, { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bufferedStdout, createLogger, LOG_BACKLOG_MAX_BYTES, LOG_BUFFER_BYTES, LOG_WRITE_MAX_BYTES } from '../../src/logger';
import { eventually } from '../helpers/eventually';

let dir: string;
let fd: number;
let file: string;
/** This test's destinations, ended (their file closed) after it: none writes to a later test's file. */
let destinations: Array<ReturnType<typeof bufferedStdout>> = [];
const realWrite = fs.write;
const writes = jest.spyOn(fs, 'write');

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kms-logger-'));
  file = path.join(dir, 'out.log');
  fd = openSync(file, 'a');
  writes.mockClear();
  writes.mockImplementation(realWrite);
});

afterEach(async () => {
  writes.mockImplementation(realWrite);
  for (const destination of destinations) {
    const closed = once(destination, 'close');
    destination.end();
    await closed;
  }
  destinations = [];
  rmSync(dir, { recursive: true, force: true });
});

afterAll(() => writes.mockRestore());

/** The buffered destination on this test's file (bufferedStdout), to be ended after the test. */
function buffered(): ReturnType<typeof bufferedStdout> {
  const destination = bufferedStdout(fd);
  destinations.push(destination);
  return destination;
}

function flushed(logger: ReturnType<typeof createLogger>): Promise<void> {
  return new Promise((resolve, reject) => logger.flush((error) => (error ? reject(error) : resolve())));
}

function lines(): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('the buffered log destination', () => {
  it('writes many lines in one write, not one write per line', async () => {
    const destination = buffered();
    const logger = createLogger('info', destination);
    // Pino's default destination starts a write for the first line at once; this one waits.
    for (let i = 0; i < 20; i++) logger.info({ requestId: `r${i}`, operation: 'create-datakey', status: 200 }, 'request');
    expect(writes).not.toHaveBeenCalled();
    await flushed(logger);
    expect(writes).toHaveBeenCalledTimes(1);
    expect(lines().map((line) => line.requestId)).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`));
  });

  it('writes once a buffer is full without waiting for the timer', async () => {
    const logger = createLogger('info', buffered());
    const detail = 'x'.repeat(200);
    let count = 0;
    while (writes.mock.calls.length === 0) {
      logger.info({ requestId: `r${count++}`, detail }, 'request');
      expect(count * 200).toBeLessThan(LOG_BUFFER_BYTES * 2);
    }
    await flushed(logger);
    expect(lines()).toHaveLength(count);
  });

  it('writes a quiet service\'s line without a flush, within the flush interval', async () => {
    const logger = createLogger('info', buffered());
    logger.info({ requestId: 'alone' }, 'request');
    expect(writes).not.toHaveBeenCalled();
    await eventually('the line written by the periodic flush', () => lines().find((line) => line.requestId === 'alone'));
  });

  it('writes whole lines, at most PIPE_BUF bytes at a time (the cluster\'s processes share one stdout)', async () => {
    const logger = createLogger('info', buffered());
    // Lines of about 300 bytes, some with characters of several bytes in UTF-8.
    for (let i = 0; i < 200; i++) logger.info({ requestId: `r${i}`, detail: i % 3 ? 'x'.repeat(250) : 'é€'.repeat(80) }, 'request');
    // A flush writes until less than LOG_BUFFER_BYTES wait; the periodic flush writes the rest.
    await eventually('every line written', () => lines().length === 200 || undefined);
    // (A flush with nothing buffered writes nothing: an empty write, left out.)
    const ours = (writes.mock.calls as unknown as Array<[number, string | Buffer]>).filter(([to, data]) => to === fd && data.length > 0);
    expect(ours.length).toBeGreaterThan(1);
    for (const [, data] of ours) {
      expect(Buffer.byteLength(data)).toBeLessThanOrEqual(LOG_WRITE_MAX_BYTES);
      expect(String(data).endsWith('\n')).toBe(true);
    }
  });

  it('holds at most LOG_BACKLOG_MAX_BYTES while stdout takes nothing, and drops what comes beyond', async () => {
    // A stdout whose write never ends (a reader that stopped): the first write stays under way.
    let release: (() => void) | undefined;
    type WriteCallback = (error: Error | null, written: number) => void;
    const parts = (args: unknown[]): { data: string; callback: WriteCallback } => ({ data: String(args[1]), callback: args[args.length - 1] as WriteCallback });
    writes.mockImplementation(((...args: unknown[]) => {
      const { data, callback } = parts(args);
      release = () => callback(null, Buffer.byteLength(data));
    }) as unknown as typeof fs.write);
    const destination = buffered();
    let dropped = 0;
    destination.on('drop', () => dropped++);
    const logger = createLogger('info', destination);
    const line = { requestId: 'r', detail: 'x'.repeat(1000) };
    const count = Math.ceil((LOG_BACKLOG_MAX_BYTES * 1.5) / 1000);
    for (let i = 0; i < count; i++) logger.info(line, 'request');
    expect(dropped).toBeGreaterThan(count / 4);
    expect(dropped).toBeLessThan(count / 2);
    // The reader comes back: what was held goes out, and the logger goes on.
    writes.mockImplementation(((...args: unknown[]) => {
      const { data, callback } = parts(args);
      setImmediate(() => callback(null, Buffer.byteLength(data)));
    }) as unknown as typeof fs.write);
    release!();
    await flushed(logger);
  });
});
