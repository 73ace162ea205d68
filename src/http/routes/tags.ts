import type { TagService } from '../../kms/tag-service';
import { pathOperation, type Operation } from '../operation';

/**
 * The tag endpoints, named here as the SDK names them (their paths' last segments do not). Four
 * are paths of a key (`/kms/{key_id}/tags...`); `{key_id}` is one path segment, held to
 * openapi.yaml's KeyIdInPath once decoded (a key id, or an alias or alias URN with its '/' sent as
 * %2F), so that `/kms/tags` and `/kms/resource_instances/action` are never read as one, and an
 * alias sent with its slash raw is no tag path (400 KMS.0201). The tag service resolves the key as
 * every operation does (KeyService.visibleKey).
 */
export function tagOperations(tags: TagService): Operation[] {
  return [
    pathOperation({ name: 'create-kms-tag', method: 'post', path: '/v1.0/{project_id}/kms/{key_id}/tags', action: 'kms:cmkTag:create', status: 204 }, (ctx, params, body) =>
      tags.createKmsTag(ctx, params.key_id, body),
    ),
    pathOperation({ name: 'batch-create-kms-tags', method: 'post', path: '/v1.0/{project_id}/kms/{key_id}/tags/action', action: 'kms:cmkTag:batch', status: 204 }, (ctx, params, body) =>
      tags.batchTags(ctx, params.key_id, body),
    ),
    pathOperation({ name: 'delete-tag', method: 'delete', path: '/v1.0/{project_id}/kms/{key_id}/tags/{key}', action: 'kms:cmkTag:delete', status: 204 }, (ctx, params) =>
      tags.deleteTag(ctx, params.key_id, params.key),
    ),
    // The batch path is literal, and matched before `{key}`: there, a DELETE is delete-tag of the tag key `action`.
    pathOperation({ name: 'delete-tag', method: 'delete', path: '/v1.0/{project_id}/kms/{key_id}/tags/action', action: 'kms:cmkTag:delete', status: 204 }, (ctx, params) =>
      tags.deleteTag(ctx, params.key_id, 'action'),
    ),
    pathOperation({ name: 'show-kms-tags', method: 'get', path: '/v1.0/{project_id}/kms/{key_id}/tags', action: 'kms:cmkTag:list' }, (ctx, params) =>
      tags.showKmsTags(ctx, params.key_id),
    ),
    pathOperation({ name: 'list-kms-tags', method: 'get', path: '/v1.0/{project_id}/kms/tags', action: 'kms:cmkTag:list' }, (ctx) => tags.listKmsTags(ctx)),
    pathOperation({ name: 'list-kms-by-tags', method: 'post', path: '/v1.0/{project_id}/kms/resource_instances/action', action: 'kms:cmkTag:listInstance' }, (ctx, _params, body) =>
      tags.listKmsByTags(ctx, body),
    ),
  ];
}
