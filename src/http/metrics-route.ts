import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { exactPath, type Operation, type PublicRoute } from './operation';

/**
 * GET /metrics on the API's port: served before the API's authentication, the body parser and the
 * access log, never audited (a scrape every few seconds would flood both), and checked against
 * openapi.yaml like the health probes, where it says its own credential: `metricsToken`.
 */
export const METRICS_ROUTE: PublicRoute = { method: 'GET', path: '/metrics', scheme: 'metricsToken' };

/** What GET /metrics answers: the text and its content type (src/metrics). */
export interface MetricsText {
  readonly contentType: string;
  text(): Promise<string>;
}

/** The metrics, and the bearer token a scrape must send, if any. */
export interface MetricsAnswer {
  readonly source: MetricsText;
  readonly token: string | undefined;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Whether the Authorization header carries `token` as a bearer token, in constant time: the digests
 * (of equal length, whatever was sent) are compared, so the time says nothing of the token.
 */
function bearerMatches(header: string | undefined, expected: Buffer): boolean {
  const match = header === undefined ? null : /^Bearer +(\S+) *$/i.exec(header);
  return timingSafeEqual(digest(match?.[1] ?? ''), expected) && match !== null;
}

/**
 * Answers a scrape: 401 (with `WWW-Authenticate: Bearer`) without the right token, else the
 * metrics (503 if they cannot be gathered, e.g. a cluster worker did not answer in time). Nothing
 * is logged: neither the token nor a refused scrape.
 */
export function answerScrape(answer: MetricsAnswer): (req: IncomingMessage, res: ServerResponse) => void {
  const expected = answer.token === undefined ? undefined : digest(answer.token);
  return (req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    if (expected !== undefined && !bearerMatches(req.headers.authorization, expected)) {
      res.writeHead(401, { 'Content-Type': 'text/plain; charset=utf-8', 'WWW-Authenticate': 'Bearer realm="metrics"' }).end('unauthorized\n');
      return;
    }
    answer.source.text().then(
      (text) => res.writeHead(200, { 'Content-Type': answer.source.contentType }).end(text),
      () => res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end('metrics unavailable\n'),
    );
  };
}

/**
 * Mounts GET /metrics when it is served on this port (behind its token); otherwise the path
 * answers as any unknown one does (404 KMS.0201).
 */
export function mountMetricsRoute(app: Router, answer: MetricsAnswer | undefined): void {
  if (answer === undefined) return;
  const handle = answerScrape(answer);
  app.get(METRICS_ROUTE.path, (req: Request, res: Response) => handle(req, res));
}

/** What the request metrics are told of each API request (src/metrics implements it). */
export interface RequestObserver {
  requestEnded(operation: string, status: number, seconds: number): void;
}

const API_PATH = /^\/v1\.0\/[^/]+\/kms\/([a-z-]+)$/;

/**
 * Times every request mounted after it and reports it by operation: the declared operation's name
 * when the request reached the route of one (the validator matched it: the tag paths'
 * `/kms/{key_id}/tags...` too), or, before that (a refused authentication), when the path is
 * `/v1.0/{project_id}/kms/<name>` of one; `versions` for the version documents; else `unknown`,
 * so that the label never holds a raw path, a project, a key id or a tag key.
 */
export function requestMetrics(observer: RequestObserver, operations: readonly Pick<Operation, 'name' | 'method' | 'path'>[], documents: ReadonlySet<string>): RequestHandler {
  const byRoute = new Map(operations.map((op) => [`${op.method.toUpperCase()} ${op.path}`, { name: op.name, path: exactPath(op.path) }]));
  // The fallback names only operations whose path is `/kms/<name>` (not the tag paths' own names).
  const names = new Set(operations.filter((op) => op.path.endsWith(`/kms/${op.name}`)).map((op) => op.name));
  const operationOf = (req: Request): string => {
    if (documents.has(req.path)) return 'versions';
    if (req.openapi !== undefined) {
      const route = byRoute.get(`${req.method} ${req.openapi.openApiRoute}`);
      if (route !== undefined && route.path.test(req.path)) return route.name;
    }
    const name = API_PATH.exec(req.path)?.[1];
    return name !== undefined && names.has(name) ? name : 'unknown';
  };
  return (req: Request, res: Response, next: NextFunction) => {
    const started = performance.now();
    res.once('finish', () => observer.requestEnded(operationOf(req), res.statusCode, (performance.now() - started) / 1000));
    next();
  };
}
