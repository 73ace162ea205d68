import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
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

/** Gives every request its id (res.locals.exchange) and its X-Request-Id header, first of all. */
export function requestIds(): RequestHandler {
  return (_req: Request, res: Response, next: NextFunction) => {
    const requestId = newRequestId();
    res.locals.exchange = { requestId };
    res.setHeader('X-Request-Id', requestId);
    next();
  };
}

/**
 * The access log, with pino-http, at debug level only (undefined otherwise, so that it costs
 * nothing): one line per request when it ends, with method, path, status, KMS code and duration.
 * Never bodies or headers. (Failures are logged by the error reply at any level; the audit log
 * records every operation.)
 */
export function accessLog(logger: Logger): RequestHandler | undefined {
  if (!logger.isLevelEnabled('debug')) return undefined;
  const line = (req: Request, res: Response, ms: unknown): object => ({
    method: req.method,
    path: req.originalUrl.split('?')[0],
    status: res.statusCode,
    code: res.locals.exchange?.errorCode,
    ms,
  });
  return pinoHttp<Request, Response>({
    logger,
    genReqId: (_req, res) => res.locals.exchange.requestId,
    customAttributeKeys: { reqId: 'requestId', responseTime: 'ms' },
    // Only the request id is bound to the request's logger, and the line names only what `line` does.
    quietReqLogger: true,
    quietResLogger: true,
    wrapSerializers: false,
    serializers: { req: (req: Request) => ({ method: req.method }) },
    customLogLevel: () => 'debug',
    customSuccessMessage: () => 'request',
    customErrorMessage: () => 'request',
    customSuccessObject: (req, res, value: { ms?: unknown }) => line(req, res, value.ms),
    customErrorObject: (req, res, _error, value: { ms?: unknown }) => line(req, res, value.ms),
  });
}
