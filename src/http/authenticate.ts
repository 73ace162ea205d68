import type { IncomingMessage } from 'node:http';
import { KmsError } from '../errors';
import { allows } from '../identity/permissions';
import type { Access, Principal, RequestContext } from '../kms/context';
import { isGrantOperation } from '../kms/grant-operations';
import type { Operation } from './operation';

const BY_PERMISSION: Access = { by: 'permission' };

/**
 * Checks that the authenticated principal may perform the operation in the path's project, and
 * builds the service's request context. A credential that lacks the permission there (of another
 * project, or without the action) may still be allowed by a grant, for the operations a grant can
 * allow: the service looks for one on the key the request names, and answers this same 403
 * without one, whether the key exists or not.
 */
export function authorise(
  req: IncomingMessage,
  principal: Principal | undefined,
  requestId: string,
  projectId: string,
  op: Pick<Operation, 'name' | 'action'>,
): RequestContext {
  if (!principal) throw new KmsError('APIGW.0301');
  const headerProject = req.headers['x-project-id'];
  if (headerProject !== undefined && headerProject !== projectId) {
    throw new KmsError('KMS.0321', { detail: 'X-Project-Id does not match the project in the URL.' });
  }
  const permitted = principal.projectId === projectId && allows(principal.actions, op.action);
  if (!permitted && !isGrantOperation(op.name)) throw new KmsError('KMS.0307');
  return { projectId, requestId, principal, actedOn: { keyId: null }, access: permitted ? BY_PERMISSION : { by: 'grant', operation: op.name } };
}
