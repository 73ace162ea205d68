import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { Principal } from '../kms/context';
import { peerOf, type Peer } from './peer';

/** What the HTTP layer knows about one request while it is handled. */
export interface Exchange {
  /** Returned as X-Request-Id and in every error body, as Huawei Cloud does. */
  readonly requestId: string;
  /** Set once the request is authenticated. */
  principal?: Principal;
  /** Set when it fails, so the access log can name the KMS code. */
  errorCode?: string;
}

/** A request's exchange inside the app (res.locals.exchange): with its peer, taken on arrival. */
export interface ApiExchange extends Exchange {
  readonly peer: Peer;
  /**
   * The operation's name, once the request reached one: for the request metrics and the access log,
   * where the path's last segment does not name it (the aliases' operations).
   */
  operation?: string;
}

/** A fresh request id: 32 lower-case hex digits. */
export function newRequestId(): string {
  return randomUUID().replace(/-/g, '');
}

/**
 * What an incoming X-Request-Id may be, to be taken as the request's id: 1 to 128 letters, digits,
 * `-`, `_`, `.` or `:` (UUIDs, hex ids, most tracing ids). It goes into the response, the logs, the
 * audit trail and error bodies, so nothing else is kept; a repeated header (joined with ", ") fails.
 */
const INCOMING_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's X-Request-Id when it is acceptable, else a fresh id. */
export function requestIdFor(header: string | string[] | undefined): string {
  return typeof header === 'string' && INCOMING_REQUEST_ID.test(header) ? header : newRequestId();
}

/**
 * Gives every request its id (res.locals.exchange) and its X-Request-Id header, first of all: the
 * caller's own X-Request-Id when it is acceptable (so a proxy's or client's id follows the request
 * into our logs and audit trail), a fresh one otherwise. The peer is taken here too, before
 * anything waits (src/http/peer.ts): a client that resets its connection right after a complete
 * request must not leave its operation's audit record without its address. A request whose
 * connection is already gone, so that its address cannot be read, is not served at all.
 */
export function requestIds(): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const peer = peerOf(req.socket);
    if (peer.address === null) {
      // The client reset the connection before its address could be read: there is no one to
      // answer, and a record of what it asked for could not say who asked. Nothing runs.
      req.socket.destroy();
      return;
    }
    const requestId = requestIdFor(req.headers['x-request-id']);
    res.locals.exchange = { requestId, peer };
    res.setHeader('X-Request-Id', requestId);
    next();
  };
}

/** The operation an access-log line names when the request reached none: the path's last segment for the API ("create-datakey"). */
function operationOf(req: Request): string {
  const path = req.originalUrl.split('?')[0] ?? '';
  return path.startsWith('/v1.0/') ? path.slice(path.lastIndexOf('/') + 1) : path;
}

/**
 * The access log, at info level: one line per request when it ends (its response finished, or its
 * connection closed first), with the request id, operation, method, status, KMS code, duration in
 * ms, and principal (kind, id and project: never a secret). Never bodies or headers. Undefined
 * (nothing to mount) when it is turned off (KMS_ACCESS_LOG=off) or the logger's level is above
 * info. (Failures are logged by the error reply at any level; the audit log records every
 * operation.) One listener and one log call per request: pino-http, used before, made a child
 * logger and several closures for every request, which cost more than the line itself (issue 21).
 */
export function accessLog(logger: Logger, enabled = true): RequestHandler | undefined {
  if (!enabled || !logger.isLevelEnabled('info')) return undefined;
  // The line is made here of identifiers, a status and a duration, never a secret: the logger's
  // redaction (its second line of defence, src/logger.ts) is left out for it, for it walked and
  // copied every line, about half the line's cost and 10 KB of garbage per request (issue 21).
  const lines = logger.child({}, { redact: [] });
  return (req: Request, res: Response, next: NextFunction) => {
    const startedAt = Date.now();
    res.once('close', () => {
      const { exchange } = res.locals;
      const principal = exchange?.principal;
      lines.info(
        {
          requestId: exchange?.requestId,
          operation: exchange?.operation ?? operationOf(req),
          method: req.method,
          status: res.statusCode,
          code: exchange?.errorCode,
          ms: Date.now() - startedAt,
          principal: principal ? { kind: principal.kind, id: principal.id, project: principal.projectId } : undefined,
        },
        'request',
      );
    });
    next();
  };
}
