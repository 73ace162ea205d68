import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Principal } from '../kms/context';

/** What the HTTP layer knows about one request while it is handled. */
export interface Exchange {
  /** Returned as X-Request-Id and in every error body, as Huawei Cloud does. */
  readonly requestId: string;
  /** Set once the request is authenticated. */
  principal?: Principal;
  /** Set when it fails, so the access log can name the KMS code. */
  errorCode?: string;
}

/** A fresh request id: 32 lower-case hex digits. */
export function newRequestId(): string {
  return randomUUID().replace(/-/g, '');
}

/**
 * Gives every request an id and, at debug level, writes one access log line when it ends: method,
 * path, status, KMS code, duration. Never bodies or headers. (Failures are logged by the error
 * reply at any level; the audit log records every operation.)
 */
export function requestLog(logger: Logger): (req: IncomingMessage, res: ServerResponse) => Exchange {
  return (req, res) => {
    const exchange: Exchange = { requestId: newRequestId() };
    if (logger.isLevelEnabled('debug')) {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        const path = (req.url ?? '').split('?')[0];
        logger.debug({ requestId: exchange.requestId, method: req.method, path, status: res.statusCode, code: exchange.errorCode, ms: Math.round(ms * 100) / 100 }, 'request');
      });
    }
    return exchange;
  };
}
