import type { IncomingMessage } from 'node:http';
import { KmsError } from '../errors';
import { allows } from '../identity/permissions';
import type { Principal, RequestContext } from '../kms/context';

/**
 * Checks that the authenticated principal may perform `action` in the path's project, and builds
 * the service's request context. A credential of another project gets the same 403 whether or not
 * the key it names exists there.
 */
export function authorise(req: IncomingMessage, principal: Principal | undefined, requestId: string, projectId: string, action: string): RequestContext {
  if (!principal) throw new KmsError('APIGW.0301');
  const headerProject = req.headers['x-project-id'];
  if (headerProject !== undefined && headerProject !== projectId) {
    throw new KmsError('KMS.0321', { detail: 'X-Project-Id does not match the project in the URL.' });
  }
  if (principal.projectId !== projectId || !allows(principal.actions, action)) throw new KmsError('KMS.0307');
  return { projectId, requestId, principal, actedOn: { keyId: null } };
}
