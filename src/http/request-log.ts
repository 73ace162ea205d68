import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Principal } from '../kms/context';

/** res.locals keys this service uses, typed in one place. */
export interface KmsLocals {
  requestId: string;
  /** Set once the request is authenticated. */
  principal?: Principal;
  /** A request body that could not be parsed, answered once the request is authenticated. */
  bodyError?: unknown;
  /** Set by the error handler, so the access log can name the KMS code of a failure. */
  errorCode?: string;
}

export function locals(res: Response): KmsLocals {
  return res.locals as KmsLocals;
}

/**
 * Gives every request an id (returned as X-Request-Id, as Huawei Cloud does) and writes one access
 * log line when it ends: method, path, status, KMS code, duration. Never bodies or headers.
 */
export function requestLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const requestId = randomUUID().replace(/-/g, '');
    locals(res).requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const entry = { requestId, method: req.method, path: req.path, status: res.statusCode, code: locals(res).errorCode, ms: Math.round(ms * 100) / 100 };
      if (res.statusCode >= 500) logger.error(entry, 'request failed');
      else logger.debug(entry, 'request');
    });
    next();
  };
}
