import type { GrantService } from '../../kms/grant-service';
import { operation, type Operation } from '../operation';

/** The grant endpoints. */
export function grantOperations(grants: GrantService): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/create-grant', 'kms:grant:create', (ctx, body) => grants.createGrant(ctx, body)),
    operation('/v1.0/{project_id}/kms/revoke-grant', 'kms:grant:revoke', (ctx, body) => grants.revokeGrant(ctx, body)),
    operation('/v1.0/{project_id}/kms/retire-grant', 'kms:grant:retire', (ctx, body) => grants.retireGrant(ctx, body)),
    operation('/v1.0/{project_id}/kms/list-grants', 'kms:grant:list', (ctx, body) => grants.listGrants(ctx, body)),
    operation('/v1.0/{project_id}/kms/list-retirable-grants', 'kms:grant:list', (ctx, body) => grants.listRetirableGrants(ctx, body ?? {})),
  ];
}
