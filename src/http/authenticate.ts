import type { IncomingMessage } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import { KmsError } from '../errors';
import type { Authenticator } from '../identity/authenticator';
import { allows } from '../identity/permissions';
import type { RequestContext } from '../kms/context';
import { locals } from './request-log';

const rawBodies = new WeakMap<IncomingMessage, Buffer>();

/** body-parser's `verify` hook: keeps the exact bytes received, which the signature covers. */
export function keepRawBody(req: IncomingMessage, _res: unknown, body: Buffer): void {
  rawBodies.set(req, body);
}

/** Establishes the principal of every request (401 APIGW.0301 when it cannot). */
export function authenticate(authenticator: Authenticator) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const url = req.originalUrl;
    const queryAt = url.indexOf('?');
    locals(res).principal = await authenticator.authenticate({
      method: req.method,
      path: queryAt < 0 ? url : url.slice(0, queryAt),
      query: queryAt < 0 ? '' : url.slice(queryAt + 1),
      headers: req.headers,
      body: rawBodies.get(req) ?? Buffer.alloc(0),
    });
    next();
  };
}

/**
 * Checks that the authenticated principal may perform `action` in the path's project, and builds
 * the service's request context. A credential of another project gets the same 403 whether or not
 * the key it names exists there.
 */
export function authorise(req: Request, res: Response, projectId: string, action: string): RequestContext {
  const { principal, requestId } = locals(res);
  if (!principal) throw new KmsError('APIGW.0301');
  const headerProject = req.get('x-project-id');
  if (headerProject !== undefined && headerProject !== projectId) {
    throw new KmsError('KMS.0321', { detail: 'X-Project-Id does not match the project in the URL.' });
  }
  if (principal.projectId !== projectId || !allows(principal.actions, action)) throw new KmsError('KMS.0307');
  return { projectId, requestId, principal };
}
