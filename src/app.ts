import express, { Router, type ErrorRequestHandler, type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import type { AuditOutcome } from './audit/audit-log';
import { AuditNotDone, type AuditSink } from './audit/audit-sink';
import { KmsError } from './errors';
import { AuthenticationFailure, type Authenticator } from './identity/authenticator';
import { auditRecord, auditRecords, auditStart, authFailureOf } from './http/audit-trail';
import { authorise } from './http/authenticate';
import { jsonBody } from './http/body';
import { ContractErrors, contractValidator, errorBodyCheck } from './http/contract';
import { compileContract } from './http/contract-compile';
import { toKmsError } from './http/error-mapping';
import { InFlight } from './http/in-flight';
import './http/locals';
import { checkOperations, exactPath, expressPath, type Operation, type PublicDocument } from './http/operation';
import { mountHealthRoutes } from './http/health-routes';
import { mountDocsRoutes } from './http/docs-routes';
import { mountMetricsRoute, requestMetrics, type MetricsAnswer, type RequestObserver } from './http/metrics-route';
import type { Readiness } from './health/readiness';
import { replies } from './http/reply';
import { inSeries } from './http/series';
import { accessLog, requestIds } from './http/request-log';
import { allOperations, PUBLIC_ROUTES, type OperationServices } from './http/routes/all-operations';
import { versionDocuments } from './http/routes/versions';
import type { ActedOn } from './kms/context';
import { loadOpenApiDocument, type OpenApiDocument } from './openapi-spec';

/** The services behind the operations (routes/all-operations.ts), and what the HTTP layer itself needs. */
export interface AppDeps extends OperationServices {
  readonly authenticator: Authenticator;
  readonly audit: AuditSink;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  /** Check every response against openapi.yaml too (the tests turn this on). */
  readonly validateResponses?: boolean;
  /** Operations under way, for a shutdown that waits for them. */
  readonly inFlight?: InFlight;
  /** What GET /readyz checks (GET /healthz and /readyz are served without a credential). */
  readonly readiness: Readiness;
  /** One info line per request (KMS_ACCESS_LOG); default on. */
  readonly accessLog?: boolean;
  /** GET /openapi.yaml, /openapi.json and the page /docs/, without a credential (KMS_DOCS); default on. */
  readonly docs?: boolean;
  /** GET /metrics, when it is served on this port (behind its token); else the path is unknown here. */
  readonly metrics?: MetricsAnswer;
  /** Told of every API request, by operation and status (the metrics). */
  readonly requestObserver?: RequestObserver;
  /** The contract; openapi.yaml by default (a test gives a broken one). */
  readonly contract?: OpenApiDocument;
}

/** The Host the client sent when it is a plain host[:port], else the address it reached. */
function hostOf(req: Request): string {
  const host = req.headers.host;
  if (host !== undefined && /^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?$/.test(host)) return host;
  const address = req.socket.localAddress ?? '127.0.0.1';
  return `${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort ?? 80}`;
}

/** Where the API's paths begin: `/v1.0/{project_id}/kms/...`. */
const API_PREFIX = '/v1.0/';

/** The raw project segment of `/v1.0/{project_id}/kms/<name>`, as sent. */
function rawProjectId(req: Request): string {
  return req.originalUrl.split('?')[0]!.split('/')[2] ?? '';
}

/**
 * One handler for all the operations: the one for the route the validator matched the request to
 * (req.openapi), found in a map, when the path is exactly the route's (the validator also matches
 * a trailing slash). A route per operation had Express try each one's path in turn on every
 * request, forty-odd regular expressions before the last (issue 21). A request not matched to an
 * operation goes on (to a public document's route, or the 404).
 */
function dispatch(handlers: ReadonlyArray<readonly [Operation, RequestHandler]>): RequestHandler {
  const byRoute = new Map(handlers.map(([op, handler]) => [`${op.method.toUpperCase()} ${op.path}`, { path: exactPath(op.path), handler }]));
  return (req, res, next) => {
    const route = req.openapi === undefined ? undefined : byRoute.get(`${req.method} ${req.openapi.openApiRoute}`);
    if (route === undefined || !route.path.test(req.path)) {
      next();
      return;
    }
    return route.handler(req, res, next);
  };
}

/**
 * The HTTP application as an Express app of its dependencies:
 * request id → health probes and the contract's docs (no credential) → GET /metrics (its own token) → request metrics → access log → body (size-limited, raw bytes kept) → authentication → body errors →
 * express-openapi-validator on openapi.yaml (path, method, project id, query, media type, body)
 * → the operation's route: authorisation → audit check → the service call → audit → reply. Every
 * failure is answered by the one error handler at the end. Every route's request validator is
 * compiled before it resolves: a contract the validator cannot load or compile fails here.
 */
export async function buildApp(deps: AppDeps): Promise<Express> {
  const document = deps.contract ?? loadOpenApiDocument();
  const operations = allOperations(deps);
  const documents = versionDocuments();
  checkOperations(document, operations, documents, PUBLIC_ROUTES);
  const publicPaths: ReadonlySet<string> = new Set(documents.map((doc) => doc.path));
  const contract = new ContractErrors(document);
  const reply = replies(deps.logger, deps.validateResponses ? errorBodyCheck(document) : undefined);
  const inFlight = deps.inFlight ?? new InFlight();

  const authenticate: RequestHandler = async (req, res, next) => {
    const { exchange, body } = res.locals;
    // The version documents are read without a credential (any sent is not looked at).
    if (req.method === 'GET' && publicPaths.has(req.path)) {
      next(body.error);
      return;
    }
    const url = req.originalUrl;
    const queryAt = url.indexOf('?');
    try {
      exchange.principal = await deps.authenticator.authenticate({
        method: req.method,
        path: queryAt < 0 ? url : url.slice(0, queryAt),
        query: queryAt < 0 ? '' : url.slice(queryAt + 1),
        headers: req.headers,
        body: body.raw,
      }, exchange.peer.certificate);
    } catch (error) {
      if (error instanceof AuthenticationFailure) deps.audit.authenticationFailed(authFailureOf(exchange, error));
      throw error;
    }
    // An oversized body was refused at once; any other bad body only now that we know who sent it.
    if (body.error !== undefined) throw body.error;
    next();
  };

  /**
   * Check the audit log → authorise → run the service call → audit → reply. The audit record is
   * appended for failures as for successes, names the key the service acted on, and no response
   * leaves before it is durable (KMS_AUDIT_SYNC): fail-closed, an answer whose record could not be
   * made so becomes 503 KMS.0104, an error's too (AuditNotDone keeps the error it would have been).
   */
  const perform = (op: Operation): RequestHandler => async (req, res) => {
    const { exchange, body } = res.locals;
    exchange.operation = op.name;
    const projectId = rawProjectId(req);
    // Express and the validator decode the path: a project is named as sent, not percent-encoded.
    if (projectId !== req.openapi?.pathParams.project_id) throw new KmsError('KMS.0201', { detail: 'project_id must not be percent-encoded.' });
    const start = auditStart();
    let actedOn: ActedOn | undefined;
    /** The request's records (its own, then a cascaded grant's each) go out in one batch: the first failure, if any. */
    const audit = (status: number, result: string): Promise<AuditOutcome> => {
      const record = auditRecord(start, exchange, op, { projectId, actedOn, status, result });
      // Every request but a cascading revoke or retire: one record, no array, no Promise.all.
      if (!actedOn?.cascadedGrants?.length) return deps.audit.append(record);
      const records = auditRecords(record, actedOn);
      return Promise.all(records.map((each) => deps.audit.append(each))).then((outcomes) => outcomes.find((outcome) => outcome !== undefined));
    };
    // Nothing runs that could not be audited: a refusal here is not recorded (it could not be).
    deps.audit.checkWritable();
    let response: unknown;
    try {
      const ctx = authorise(req, exchange.principal, exchange.requestId, projectId, op);
      actedOn = ctx.actedOn;
      response = await inFlight.track(async () => op.run(ctx, op.method === 'get' ? req.query : body.parsed, req.openapi?.pathParams ?? {}));
    } catch (error) {
      const kmsError = toKmsError(error, contract, op.path);
      const failure = await audit(kmsError.status, kmsError.code);
      throw failure ? new KmsError('KMS.0104', { cause: new AuditNotDone(failure, kmsError) }) : kmsError;
    }
    const status = op.status ?? 200;
    const failure = await audit(status, 'OK');
    if (failure) throw new KmsError('KMS.0104', { cause: new AuditNotDone(failure) });
    if (status === 204) reply.noContent(res);
    else reply.json(res, status, response);
  };

  /** A public document: no authorisation, no audit (see PublicDocument); the same reply and error path. */
  const serveDocument = (doc: PublicDocument): RequestHandler => (req, res) => {
    reply.json(res, 200, doc.build({ baseUrl: `${req.protocol}://${hostOf(req)}` }));
  };

  const app = express();
  // Nothing of Express's own answers is used: no ETag, no X-Powered-By; paths match exactly.
  app.disable('x-powered-by');
  app.disable('etag');
  app.enable('case sensitive routing');
  app.enable('strict routing');

  // The probes, the contract's pages and the scrapes, on a router of their own that an API path
  // (under /v1.0/) never enters: none of their routes takes one, and their path matching was
  // work on every API request (issue 21).
  const publicRoutes = Router({ caseSensitive: true, strict: true });
  mountHealthRoutes(publicRoutes, deps.readiness);
  if (deps.docs ?? true) mountDocsRoutes(publicRoutes);
  mountMetricsRoute(publicRoutes, deps.metrics);
  const validator = contractValidator(document, { validateResponses: deps.validateResponses ?? false });
  const log = accessLog(deps.logger, deps.accessLog ?? true);
  // One layer of the app's router for the whole chain (src/http/series.ts): the request's id;
  // the public routes; then, for what they do not answer (every API request), the API's chain.
  app.use(
    inSeries([
      requestIds(),
      (req: Request, res: Response, next: NextFunction) => (req.path.startsWith(API_PREFIX) ? next() : publicRoutes(req, res, next)),
      // After the probes, the contract's pages and the scrapes: they are not API requests.
      ...(deps.requestObserver ? [requestMetrics(deps.requestObserver, operations, publicPaths)] : []),
      ...(log ? [log] : []),
      jsonBody(deps.bodyLimitBytes),
      authenticate,
      ...validator.handlers,
      dispatch(operations.map((op) => [op, perform(op)])),
    ]),
  );
  for (const doc of documents) app.get(expressPath(doc.path), serveDocument(doc));
  app.use((_req: Request, _res: Response, next: NextFunction) => next(new KmsError('KMS.0201')));
  const onError: ErrorRequestHandler = (error: unknown, req, res, _next) => {
    // The route the validator matched (when it did) picks the field codes of its body's schema.
    reply.error(res, res.locals.exchange, toKmsError(error, contract, req.openapi?.openApiRoute));
  };
  app.use(onError);
  await compileContract(app, validator.requestChecks, [...operations, ...documents]);
  return app;
}
