import pino, { type Logger } from 'pino';

/**
 * The service's JSON logger. Request bodies are never logged; the redaction list is a second line of
 * defence for any object that carries a secret field by mistake.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
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
