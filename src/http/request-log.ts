import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import type { Principal } from '../kms/context';

/** res.locals keys this service uses, typed in one place. */
export interface KmsLocals {
  requestId: string;
  /** Set once the request is authenticated. */
  principal?: Principal;
  /** Set by the error handler, so the access log can name the KMS code of a failure. */
  errorCode?: string;
}

export function locals(res: Response): KmsLocals {
  return res.locals as KmsLocals;
}

/**
 * Gives every request an id (returned as X-Request-Id, as Huawei Cloud does) and, at debug level,
 * writes one access log line when it ends: method, path, status, KMS code, duration. Never bodies
 * or headers. (Failures are logged by the error handler at any level; the audit log records every
 * operation.)
 */
export function requestLog(logger: Logger) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const requestId = randomUUID().replace(/-/g, '');
    locals(res).requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    if (logger.isLevelEnabled('debug')) {
      const started = process.hrtime.bigint();
      res.on('finish', () => {
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        logger.debug({ requestId, method: req.method, path: req.path, status: res.statusCode, code: locals(res).errorCode, ms: Math.round(ms * 100) / 100 }, 'request');
      });
    }
    next();
  };
}
