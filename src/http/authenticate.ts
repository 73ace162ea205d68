import type { Request, Response } from 'express';
import type { Principal, RequestContext } from '../kms/context';
import { locals } from './request-log';

const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous', id: 'anonymous' });

/**
 * The seam where a request's principal is established and checked. Until authentication lands
 * (AK/SK signatures, tokens) every caller is anonymous and may do everything in any project.
 * Throws a KmsError (KMS.03xx) when the principal may not perform `action` in the project.
 */
export function authorise(req: Request, res: Response, action: string): RequestContext {
  void action; // Checked against the principal's permissions once identities exist.
  const projectId = String(req.params.project_id);
  return { projectId, requestId: locals(res).requestId, principal: ANONYMOUS };
}
