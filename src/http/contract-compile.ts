import type { Express, Request, RequestHandler, Response } from 'express';
import { StartError } from '../start-error';
import { isValidatorError } from './contract';
import type { OperationMethod, OperationPath } from './operation';

/** A route of openapi.yaml that the app serves: an operation or a public document. */
export interface ContractRoute {
  readonly method: OperationMethod;
  readonly path: OperationPath;
}

/** A project id the contract's ProjectId pattern takes, for the paths of the compile requests. */
const PROJECT_ID = 'compile-check';

/**
 * Compiles each route's request validator before the service takes a request.
 * express-openapi-validator loads the document on its first request and compiles an operation's
 * validator on that operation's first request (50 to 300 ms each): a contract it cannot load or
 * compile would show as 500s, one operation at a time, and the first callers would pay the
 * compile. Here one request per route goes through the validator's request checks at start-up,
 * built as Express builds its requests (on the app's request prototype), with the Content-Type
 * real requests are given (media-type.ts), so that the validators compiled are the ones later
 * requests use. A refusal of the request (400: the empty body lacks required fields) means it
 * compiled; anything else fails the start, in one line.
 *
 * Response validators (on in the tests only) still compile on an operation's first response.
 */
export async function compileContract(app: Express, requestChecks: readonly RequestHandler[], routes: readonly ContractRoute[]): Promise<void> {
  for (const route of routes) {
    const res: Response = Object.create(app.response);
    const failure = await runChecks(requestChecks, compileRequest(app, route), res);
    if (failure === undefined || (isValidatorError(failure) && failure.status === 400)) continue;
    const reason = failure instanceof Error ? failure.message : String(failure);
    throw new StartError(`openapi.yaml: ${route.method.toUpperCase()} ${route.path} does not compile: ${firstLine(reason)}`, { cause: failure });
  }
}

function compileRequest(app: Express, route: ContractRoute): Request {
  const url = route.path.replace('{project_id}', PROJECT_ID);
  // Express gives each request its app's request prototype (req.path, req.query, req.app).
  const req: Request = Object.create(app.request);
  req.method = route.method.toUpperCase();
  req.url = url;
  req.originalUrl = url;
  req.baseUrl = '';
  req.params = {};
  req.headers = { 'content-type': 'application/json' };
  req.body = route.method === 'post' ? {} : undefined;
  return req;
}

/** Runs the handlers in turn, as Express would; resolves with what the first to fail passed to `next`. */
async function runChecks(handlers: readonly RequestHandler[], req: Request, res: Response): Promise<unknown> {
  for (const handler of handlers) {
    const failure = await new Promise<unknown>((resolve) => {
      try {
        void handler(req, res, resolve);
      } catch (error) {
        resolve(error);
      }
    });
    if (failure !== undefined) return failure;
  }
  return undefined;
}

function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}
