import type { Permission } from '../identity/permissions';
import type { RequestContext } from '../kms/context';
import type { paths } from './openapi.generated';

/** A path of openapi.yaml, e.g. "/v1.0/{project_id}/kms/create-key". */
export type OperationPath = keyof paths;

type Post<P extends OperationPath> = paths[P]['post'];
type JsonOf<Content> = Content extends { content: { 'application/json': infer Body } } ? Body : never;

/** The body openapi.yaml describes for the operation (undefined too when the body is optional). */
export type RequestBodyOf<P extends OperationPath> = Post<P> extends { requestBody: infer Body }
  ? JsonOf<Body>
  : Post<P> extends { requestBody?: infer Body }
    ? JsonOf<Body> | undefined
    : undefined;

/** The operation's 200 body as openapi.yaml describes it. */
export type ResponseOf<P extends OperationPath> = Post<P> extends { responses: { 200: infer Success } } ? JsonOf<Success> : never;

type Get<P extends OperationPath> = paths[P]['get'];

/** The 200 body of the path's GET as openapi.yaml describes it. */
export type GetResponseOf<P extends OperationPath> = Get<P> extends { responses: { 200: infer Success } } ? JsonOf<Success> : never;

/** The HTTP methods operations use: the API's operations are POSTs with a body, its few reads GETs, delete-tag a DELETE, and delete-alias a DELETE with a body. */
export type OperationMethod = 'get' | 'post' | 'delete';

/** The statuses an operation answers success with: 200 with a body; 201 with the body of what it made; 204 without a body. */
export type SuccessStatus = 200 | 201 | 204;

type MethodOf<P extends OperationPath, M extends OperationMethod> = paths[P][M];

/** The path's own parameters for the method as openapi.yaml declares them, but the project (the request context's). */
export type PathParamsOf<P extends OperationPath, M extends OperationMethod> = MethodOf<P, M> extends { parameters: { path: infer Params } } ? Omit<Params, 'project_id'> : never;

type BodyOf<P extends OperationPath, M extends OperationMethod> = MethodOf<P, M> extends { requestBody: infer Body }
  ? JsonOf<Body>
  : MethodOf<P, M> extends { requestBody?: infer Body }
    ? JsonOf<Body> | undefined
    : undefined;

/** Nothing for an operation openapi.yaml answers 204, else its 200 body. */
type AnswerOf<P extends OperationPath, M extends OperationMethod> = MethodOf<P, M> extends { responses: { 204: unknown } }
  ? void
  : MethodOf<P, M> extends { responses: { 200: infer Success } }
    ? JsonOf<Success>
    : never;

/** Path parameters as the validator decoded them, by name (project_id among them). */
export type PathParams = Readonly<Record<string, string>>;

/**
 * One API operation: `POST /v1.0/{project_id}/kms/<name>` (or a GET there), a method of a path
 * that does not name it (the v2 aliases', declaredOperation), or one of the tag paths
 * (`/kms/{key_id}/tags...`, pathOperation). The app registers a route for each and checks the list
 * against openapi.yaml at start-up, both ways (see checkOperations).
 */
export interface Operation {
  /** The path's last segment, e.g. "create-datakey", or the declared name ("create-alias", "delete-tag"): the audit trail's action and the metrics' label. */
  readonly name: string;
  readonly method: OperationMethod;
  readonly path: OperationPath;
  /** The permission the API's IAM model names for it, e.g. "kms:dek:create". */
  readonly action: string;
  /**
   * The success status, 200 unless the API names another: 201 (create-alias), or 204 without a
   * body (delete-alias, and the SDK's create-kms-tag, batch tags action and delete-tag);
   * checkOperations holds it to openapi.yaml's responses.
   */
  readonly status?: SuccessStatus;
  /** `input`: the body the contract checked, or for a GET its query parameters; `params`: the path's, decoded. */
  readonly run: (ctx: RequestContext, input: unknown, params: PathParams) => unknown;
}

/**
 * Declares an operation of openapi.yaml's `path`: its handler is typed by the document's request
 * and response schemas (openapi.generated.ts). The one widening here is the body's: the validator
 * has checked it against that schema before `run` sees it.
 */
export function operation<P extends OperationPath>(
  path: P,
  action: Permission,
  run: (ctx: RequestContext, body: RequestBodyOf<P>) => ResponseOf<P> | Promise<ResponseOf<P>>,
): Operation {
  return { name: nameOf(path), method: 'post', path, action, run: run as (ctx: RequestContext, body: unknown) => unknown };
}

function nameOf(path: OperationPath): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Declares a GET of openapi.yaml's `path` (it has no body), e.g. user-quotas. */
export function getOperation<P extends OperationPath>(
  path: P,
  action: Permission,
  run: (ctx: RequestContext) => GetResponseOf<P> | Promise<GetResponseOf<P>>,
): Operation {
  return { name: nameOf(path), method: 'get', path, action, run: (ctx) => run(ctx) };
}

/**
 * Declares an operation of a path with parameters of its own besides the project (the tag paths,
 * `/kms/{key_id}/tags...`), whose last segment does not name it: `name` does (the audit trail's
 * action, the metrics' label). Its handler gets those parameters as the validator decoded them,
 * typed by openapi.yaml, and the body, if the method has one. An operation openapi.yaml answers
 * 204 answers without a body (its handler returns nothing).
 */
export function pathOperation<P extends OperationPath, M extends OperationMethod>(
  spec: { readonly name: string; readonly method: M; readonly path: P; readonly action: Permission; readonly status?: 200 | 204 },
  run: (ctx: RequestContext, params: PathParamsOf<P, M>, body: BodyOf<P, M>) => AnswerOf<P, M> | Promise<AnswerOf<P, M>>,
): Operation {
  // The one widening: the validator has checked the path parameters and the body against the
  // schemas these types are generated from before `run` sees them.
  return { ...spec, run: (ctx, body, params) => run(ctx, params as PathParamsOf<P, M>, body as BodyOf<P, M>) };
}

/** A GET's query parameters, a POST's or DELETE's body, as openapi.yaml describes them. */
type InputOf<Op> = Op extends { requestBody: infer Body }
  ? JsonOf<Body>
  : Op extends { requestBody?: infer Body }
    ? JsonOf<Body> | undefined
    : Op extends { parameters: { query?: infer Query } }
      ? Query
      : undefined;
/** The success body of `status` (void for 204). */
type OutputOf<Op, S extends SuccessStatus> = S extends 204 ? void : Op extends { responses: Record<S, infer Success> } ? JsonOf<Success> : never;

/**
 * Declares an operation whose path's last segment does not name it alone (v2 aliases: POST, GET
 * and DELETE of `…/kms/aliases`, and `…/kms/alias/associate`), or that answers 201 or 204: its
 * name, the audit trail's action, is given; its input and output are typed by openapi.yaml's
 * method of the path (the query of a GET, the body otherwise), which the validator has checked.
 */
export function declaredOperation<P extends OperationPath, M extends OperationMethod, S extends SuccessStatus>(
  declared: { readonly name: string; readonly method: M; readonly path: P; readonly status: S },
  action: Permission,
  run: (ctx: RequestContext, input: InputOf<MethodOf<P, M>>) => OutputOf<MethodOf<P, M>, S> | Promise<OutputOf<MethodOf<P, M>, S>>,
): Operation {
  // The one widening: the validator has checked the input against the schemas these types are generated from.
  return { ...declared, action, run: run as (ctx: RequestContext, input: unknown) => unknown };
}

/** What a public document may know of its request. */
export interface DocumentRequest {
  /** Where the client reached the service, e.g. "http://127.0.0.1:8080". */
  readonly baseUrl: string;
}

/**
 * A document anyone may read without a credential, as the API defines the version documents
 * (`GET /`, `GET /v1.0`): it names no key, holds nothing of any project and changes nothing, so
 * it is neither authorised nor audited (an audit line per anonymous request would let anyone
 * grow the audit log). It goes through the same contract and error path as the operations.
 */
export interface PublicDocument {
  readonly method: 'get';
  readonly path: OperationPath;
  readonly build: (request: DocumentRequest) => unknown;
}

export function publicDocument<P extends OperationPath>(path: P, build: (request: DocumentRequest) => GetResponseOf<P>): PublicDocument {
  return { method: 'get', path, build };
}

/**
 * The paths a route of openapi.yaml takes, as Express's strict, case-sensitive routing took them:
 * each `{param}` one segment, nothing more (no trailing slash).
 */
export function exactPath(template: string): RegExp {
  const segments = template.split('/').map((segment) => (/^\{[^}]+\}$/.test(segment) ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  return new RegExp(`^${segments.join('/')}$`);
}

/** openapi.yaml's path template as an Express route: "{project_id}" → ":project_id". */
export function expressPath(path: OperationPath): string {
  return path.replace(/\{([^}]+)\}/g, ':$1');
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * Fails start-up unless the operations (and public documents) and openapi.yaml describe the same
 * API: every one is a method of a path the document describes, and every method of every path the
 * document describes has a handler (a documented endpoint without one would answer as if it did
 * not exist).
 */
export function checkOperations(
  document: { paths: Record<string, object> },
  operations: readonly Operation[],
  documents: readonly PublicDocument[] = [],
  publicRoutes: readonly PublicRoute[] = [],
): void {
  const documented = new Set<string>();
  /** Routes documented without the API's credential: `security: []`, or one scheme of their own (its name). */
  const documentedPublic = new Map<string, string | undefined>();
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      if (!(method in item)) continue;
      const route = `${method.toUpperCase()} ${path}`;
      documented.add(route);
      const security = publicSecurity((item as Record<string, unknown>)[method]);
      if (security !== false) documentedPublic.set(route, security);
    }
  }
  const handled = new Set<string>();
  const bodiless: string[] = [];
  const undeclaredStatus: string[] = [];
  for (const op of operations) {
    const responses = (document.paths[op.path] as Record<string, { responses?: Record<string, unknown> } | undefined> | undefined)?.[op.method]?.responses;
    if (responses === undefined) continue;
    if (('204' in responses) !== (op.status === 204)) bodiless.push(`${op.method.toUpperCase()} ${op.path}`);
    else if (!(String(op.status ?? 200) in responses)) undeclaredStatus.push(`${op.method.toUpperCase()} ${op.path} answers ${op.status ?? 200}`);
  }
  for (const op of [...operations, ...documents]) {
    const route = `${op.method.toUpperCase()} ${op.path}`;
    if (handled.has(route)) throw new Error(`two operations handle ${route}`);
    handled.add(route);
  }
  const served = new Map<string, string | undefined>();
  for (const publicRoute of publicRoutes) {
    const route = `${publicRoute.method} ${publicRoute.path}`;
    if (handled.has(route) || served.has(route)) throw new Error(`two handlers serve ${route}`);
    served.set(route, publicRoute.scheme);
    handled.add(route);
  }
  const securityOf = (scheme: string | undefined): string => (scheme === undefined ? '`security: []`' : `\`security: [{${scheme}: []}]\``);
  const problems = [
    ...[...handled].filter((route) => !documented.has(route)).map((route) => `${route} has a handler but openapi.yaml does not describe it`),
    ...[...documented].filter((route) => !handled.has(route)).map((route) => `${route} is in openapi.yaml but has no handler`),
    ...[...served]
      .filter(([route, scheme]) => documented.has(route) && (!documentedPublic.has(route) || documentedPublic.get(route) !== scheme))
      .map(([route, scheme]) => `${route} is served without a credential but openapi.yaml does not say ${securityOf(scheme)}`),
    ...[...documentedPublic].filter(([route]) => !served.has(route)).map(([route, scheme]) => `${route} says ${securityOf(scheme)} in openapi.yaml but is not a public route`),
    ...bodiless.map((route) => `${route} answers 204 in openapi.yaml or its operation says status 204, but not both`),
    ...undeclaredStatus.map((answer) => `${answer}, which openapi.yaml's responses do not list`),
  ];
  if (problems.length > 0) throw new Error(`the operations and openapi.yaml disagree: ${problems.join('; ')}`);
}

/**
 * A route served without the API's credential, before authentication, the body parser and the
 * contract validator: the health probes, and GET /metrics behind its own token. openapi.yaml
 * documents each with `security: []`, or with `security: [{<scheme>: []}]` for a route with a
 * credential of its own, and checkOperations holds the two to each other.
 */
export interface PublicRoute {
  readonly method: 'GET';
  readonly path: string;
  /** The security scheme of openapi.yaml the route checks itself (none: `security: []`). */
  readonly scheme?: string;
}

/**
 * Whether an OpenAPI operation object is served without the API's credential: `security: []`
 * (undefined), or one requirement of one scheme of its own (`security: [{metricsToken: []}]`, the
 * scheme's name); false otherwise (no `security`: the API's credential).
 */
function publicSecurity(operation: unknown): string | undefined | false {
  if (typeof operation !== 'object' || operation === null || !('security' in operation)) return false;
  const { security } = operation;
  if (!Array.isArray(security)) return false;
  if (security.length === 0) return undefined;
  const [requirement] = security as unknown[];
  if (security.length !== 1 || typeof requirement !== 'object' || requirement === null) return false;
  const schemes = Object.keys(requirement);
  return schemes.length === 1 ? schemes[0]! : false;
}
