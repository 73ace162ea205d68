import pino, { type Logger } from 'pino';

/**
 * One write carries at most this many bytes, whole lines only: PIPE_BUF on Linux, the most a
 * write to a pipe (docker's stdout, a log collector's) is atomic for. The cluster's processes
 * share one stdout: larger writes from two of them could interleave inside a line.
 */
export const LOG_WRITE_MAX_BYTES = 4096;
/** Lines wait in memory until this many bytes are ready, then go out (issue 21)... */
export const LOG_BUFFER_BYTES = 3072;
/** ...or until this much time has passed, so that a quiet service's lines are not held back. */
export const LOG_FLUSH_MS = 100;
/**
 * The most that may wait: when stdout does not take lines (a stopped reader), further lines are
 * dropped beyond this, rather than held in memory without bound or blocking the requests.
 */
export const LOG_BACKLOG_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Standard output for JSON lines, written asynchronously and in batches: a line joins a buffer
 * that goes out once it holds {@link LOG_BUFFER_BYTES}, or at the latest every
 * {@link LOG_FLUSH_MS} ms, in writes of whole lines of at most {@link LOG_WRITE_MAX_BYTES}. One
 * write per line (pino's default) cost the access log about a sixth of the service's throughput.
 * What is still buffered is written synchronously when the process exits (pino's exit hook, also
 * on the way out after SIGTERM or SIGINT, src/main.ts); a process killed outright (SIGKILL, a
 * power cut) loses at most the last {@link LOG_FLUSH_MS} ms of lines. The audit trail, not this
 * log, is the durable record.
 */
export function bufferedStdout(fd = 1): ReturnType<typeof pino.destination> {
  return pino.destination({
    dest: fd,
    sync: false,
    minLength: LOG_BUFFER_BYTES,
    maxWrite: LOG_WRITE_MAX_BYTES,
    maxLength: LOG_BACKLOG_MAX_BYTES,
    periodicFlush: LOG_FLUSH_MS,
  });
}

/** The process's one buffered standard output, made on first use (one buffer, one timer, one exit hook). */
let stdout: pino.DestinationStream | undefined;

/** How long a stop waits for buffered lines to be written before it exits anyway (a blocked stdout). */
const FLUSH_LIMIT_MS = 5000;

/**
 * Exits with `code` once no write of buffered lines is under way on libuv's thread pool: the exit
 * hook then writes what is left synchronously, after it and in order. (The hook alone would
 * write the rest while a write could still be under way: lines out of order, or one lost if the
 * process ended first.) Pino's flush calls back when the writes it started are done, leaving less
 * than {@link LOG_BUFFER_BYTES} for the hook.
 */
export function exitAfterFlush(logger: Logger, code: number): void {
  const exit = (): void => process.exit(code);
  setTimeout(exit, FLUSH_LIMIT_MS).unref();
  logger.flush(exit);
}

/**
 * The service's logger: JSON lines (to `destination`, by default standard output, buffered: see
 * bufferedStdout), or pino-pretty's when `pretty` (see prettyLogs). Request bodies are never logged; the redaction list is a second line of
 * defence for any object that carries a secret field by mistake.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, options: { pretty?: boolean } = {}): Logger {
  const pretty = options.pretty === true && destination === undefined;
  return pino(
    {
      level,
      // pino-pretty in a worker thread of its own (pino's transport), so formatting never slows a request.
      ...(pretty ? { transport: { target: 'pino-pretty', options: { destination: 1 } } } : {}),
      base: { service: 'kms' },
      redact: {
        paths: [
          'pin',
          '*.pin',
          'plain_text',
          '*.plain_text',
          'data_key',
          '*.data_key',
          'secret_key',
          '*.secret_key',
          'req.headers.authorization',
          'req.headers["x-auth-token"]',
        ],
        censor: '[redacted]',
      },
    },
    pretty ? undefined : (destination ?? (stdout ??= bufferedStdout())),
  );
}

/**
 * Human-readable log lines (pino-pretty) when stdout is a terminal and pino-pretty is installed,
 * JSON lines otherwise (a pipe, a file, a log collector, or pino-pretty absent).
 */
export function prettyLogs(stdoutIsTerminal: boolean, resolve: (id: string) => string = require.resolve): boolean {
  if (!stdoutIsTerminal) return false;
  try {
    resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}
