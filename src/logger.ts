import pino, { type Logger } from 'pino';

/**
 * The service's logger: JSON lines, or pino-pretty's when `pretty` (see prettyLogs). Request bodies are never logged; the redaction list is a second line of
 * defence for any object that carries a secret field by mistake.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, options: { pretty?: boolean } = {}): Logger {
  return pino(
    {
      level,
      // pino-pretty in a worker thread of its own (pino's transport), so formatting never slows a request.
      ...(options.pretty && destination === undefined ? { transport: { target: 'pino-pretty', options: { destination: 1 } } } : {}),
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
    destination,
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
