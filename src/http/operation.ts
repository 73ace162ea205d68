import type { RequestContext } from '../kms/context';

/**
 * One API operation: `POST /v1.0/{project_id}/kms/<name>`. Routes are lists of these; the app
 * mounts them all the same way (context → authorisation → service call → JSON reply).
 */
export interface Operation {
  /** The path's last segment, e.g. "create-datakey". */
  readonly name: string;
  /** The permission the API's IAM model names for it, e.g. "kms:dek:create". */
  readonly action: string;
  readonly run: (ctx: RequestContext, body: unknown) => unknown;
}

/** Declares an operation. The body type is what openapi.yaml validated before `run` sees it. */
export function operation<Body>(name: string, action: string, run: (ctx: RequestContext, body: Body) => unknown): Operation {
  return { name, action, run: run as (ctx: RequestContext, body: unknown) => unknown };
}

const OPERATION_PATH = /^\/v1\.0\/([^/]+)\/kms\/([a-z-]+)$/;

/** The project and operation name of an API path (`/v1.0/{project_id}/kms/<name>`), or undefined. */
export function operationPathOf(path: string): { projectId: string; operation: string } | undefined {
  const match = OPERATION_PATH.exec(path);
  return match ? { projectId: match[1]!, operation: match[2]! } : undefined;
}
