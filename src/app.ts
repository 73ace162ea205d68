import express, { type Express } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Logger } from 'pino';
import { KmsError } from './errors';
import { authorise } from './http/authenticate';
import { errorHandler } from './http/error-handler';
import { InFlight } from './http/in-flight';
import type { Operation } from './http/operation';
import { requestLog } from './http/request-log';
import { dataKeyOperations } from './http/routes/datakeys';
import { keyOperations } from './http/routes/keys';
import type { DataKeyService } from './kms/datakey-service';
import type { KeyService } from './kms/key-service';
import { fieldErrorCodes, loadOpenApiDocument } from './openapi-spec';

export interface AppDeps {
  readonly keys: KeyService;
  readonly dataKeys: DataKeyService;
  readonly logger: Logger;
  readonly bodyLimitBytes: number;
  /** Check every response against openapi.yaml too (the tests turn this on). */
  readonly validateResponses?: boolean;
  /** Operations under way, for a shutdown that waits for them. */
  readonly inFlight?: InFlight;
}

/**
 * The HTTP application as a function of its dependencies:
 * request id and access log → JSON body (size-limited) → OpenAPI validation → operations → errors.
 */
export function buildApp(deps: AppDeps): Express {
  const document = loadOpenApiDocument();
  const app = express();
  app.disable('x-powered-by');
  // Paths are exact, as the API defines them: /kms/LIST-KEYS or a trailing slash is not an operation.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);
  app.set('etag', false);

  app.use(requestLog(deps.logger));
  app.use(express.json({ limit: deps.bodyLimitBytes }));
  app.use(
    OpenApiValidator.middleware({
      // A parsed copy: the validator dereferences it in place, and the field-code map reads the original.
      apiSpec: structuredClone(document) as unknown as string,
      validateRequests: true,
      validateResponses: deps.validateResponses ?? false,
      validateApiSpec: true,
    }),
  );

  const router = express.Router({ caseSensitive: true, strict: true });
  const inFlight = deps.inFlight ?? new InFlight();
  for (const op of [...keyOperations(deps.keys), ...dataKeyOperations(deps.dataKeys)]) mount(router, op, inFlight);
  app.use(router);

  app.use(() => {
    throw new KmsError('KMS.0201');
  });
  app.use(errorHandler(deps.logger, fieldErrorCodes(document)));
  return app;
}

function mount(router: express.Router, op: Operation, inFlight: InFlight): void {
  router.post(`/v1.0/:project_id/kms/${op.name}`, async (req, res) => {
    const ctx = authorise(req, res, op.action);
    res.json(await inFlight.track(async () => op.run(ctx, req.body)));
  });
}
