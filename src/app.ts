import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Logger } from 'pino';
import type { AuditSink } from './audit/audit-sink';
import { KmsError } from './errors';
import type { Authenticator } from './identity/authenticator';
import { auditRecord, auditStart } from './http/audit-trail';
import { authenticate, authorise, keepRawBody } from './http/authenticate';
import { errorHandler } from './http/error-handler';
import { toKmsError } from './http/error-mapping';
import { InFlight } from './http/in-flight';
import { operationNameOf, operationPathOf, type Operation } from './http/operation';
import { locals, requestLog } from './http/request-log';
import { dataKeyOperations } from './http/routes/datakeys';
import { keyOperations } from './http/routes/keys';
import type { RequestContext } from './kms/context';
import type { DataKeyService } from './kms/datakey-service';
import type { KeyService } from './kms/key-service';
import { fieldErrorCodes, loadOpenApiDocument, type FieldErrorCodes, type OpenApiDocument } from './openapi-spec';

export interface AppDeps {
  readonly keys: KeyService;
  readonly dataKeys: DataKeyService;
  readonly authenticator: Authenticator;
  readonly audit: AuditSink;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  /** Check every response against openapi.yaml too (the tests turn this on). */
  readonly validateResponses?: boolean;
  /** Operations under way, for a shutdown that waits for them. */
  readonly inFlight?: InFlight;
}

interface OperationDeps {
  readonly inFlight: InFlight;
  readonly audit: AuditSink;
  readonly fieldCodes: FieldErrorCodes;
}

/**
 * The HTTP application as a function of its dependencies:
 * request id → body (size-limited, raw bytes kept) → authentication → body errors → OpenAPI
 * validation → operations (authorisation, audit) → errors.
 */
export function buildApp(deps: AppDeps): Express {
  const document = loadOpenApiDocument();
  const fieldCodes = fieldErrorCodes(document);
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Paths are exact, as the API defines them: /kms/LIST-KEYS or a trailing slash is not an operation.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);

  // Request id, body, authentication: one middleware, one pass through Express's layers.
  const identify = requestLog(deps.logger);
  const parseJson = express.json({ limit: deps.bodyLimitBytes, verify: keepRawBody });
  const authenticateRequest = authenticate(deps.authenticator);
  app.use((req: Request, res: Response, next: NextFunction) => {
    identify(req, res, () =>
      parseJson(req, res, (error?: unknown) => {
        // An oversized body is refused at once; any other bad body only once we know who sent it.
        if (error && (error as { type?: unknown }).type === 'entity.too.large') return next(error);
        authenticateRequest(req, res, (authError?: unknown) => next(authError ?? error)).catch(next);
      }),
    );
  });
  app.use(requestValidation(document, deps.validateResponses ?? false));

  const operations = new Map([...keyOperations(deps.keys), ...dataKeyOperations(deps.dataKeys)].map((op) => [op.name, op]));
  app.use(operationHandler(operations, { inFlight: deps.inFlight ?? new InFlight(), audit: deps.audit, fieldCodes }));

  app.use(() => {
    throw new KmsError('KMS.0201');
  });
  app.use(errorHandler(deps.logger, fieldCodes));
  return app;
}

/**
 * express-openapi-validator finds a request's path by compiling and trying every path of the
 * document in turn, on every request. One validator per operation, chosen by a map lookup, keeps
 * that to one path; anything that is not an operation's path goes to a validator of the whole
 * document, which answers unknown paths and methods.
 */
function requestValidation(document: OpenApiDocument, validateResponses: boolean): express.RequestHandler {
  const validator = (spec: OpenApiDocument, validateApiSpec: boolean): express.Router =>
    express.Router().use(
      OpenApiValidator.middleware({
        // A copy: the validator dereferences its document in place, and the field-code map reads the original.
        apiSpec: structuredClone(spec) as unknown as string,
        validateRequests: true,
        validateResponses,
        validateApiSpec,
        // Authentication is ours (the document declares no security schemes) and no body is multipart.
        validateSecurity: false,
        fileUploader: false,
      }),
    );
  const byOperation = new Map<string, express.Router>();
  for (const [route, item] of Object.entries(document.paths)) {
    byOperation.set(route.split('/').pop()!, validator({ ...document, paths: { [route]: item } }, false));
  }
  const whole = validator(document, true);
  return (req, res, next) => {
    const operation = operationNameOf(req.path);
    ((operation && byOperation.get(operation)) || whole)(req, res, next);
  };
}

/**
 * Every operation behind one handler (the validator has already matched the path and method; a
 * map lookup finds the operation): authorise → run the service call → audit → reply. The audit
 * record is appended before the response is sent, for failures as for successes.
 */
function operationHandler(operations: ReadonlyMap<string, Operation>, deps: OperationDeps): express.RequestHandler {
  return async (req, res, next) => {
    const path = operationPathOf(req.path);
    const op = path && req.method === 'POST' ? operations.get(path.operation) : undefined;
    if (!path || !op) return next();
    const { projectId } = path;
    const start = auditStart();
    const audit = (status: number, result: string, response?: unknown): void =>
      deps.audit.append(
        auditRecord(start, req, op, { projectId, principal: locals(res).principal, requestId: locals(res).requestId, status, result, response }),
      );
    let response: unknown;
    try {
      const ctx: RequestContext = authorise(req, res, projectId, op.action);
      response = await deps.inFlight.track(async () => op.run(ctx, req.body));
    } catch (error) {
      const kmsError = toKmsError(error, op.name, deps.fieldCodes);
      audit(kmsError.status, kmsError.code);
      throw kmsError;
    }
    audit(200, 'OK', response);
    res.json(response);
  };
}
