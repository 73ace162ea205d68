import type { AliasService } from '../../kms/alias-service';
import { declaredOperation, type Operation } from '../operation';

/** The aliases (v2) endpoints: three methods of one path and a path of two segments, so each is named here. */
export function aliasOperations(aliases: AliasService): Operation[] {
  return [
    declaredOperation({ name: 'create-alias', method: 'post', path: '/v1.0/{project_id}/kms/aliases', status: 201 }, 'kms:alias:create', (ctx, body) => aliases.createAlias(ctx, body)),
    declaredOperation({ name: 'list-aliases', method: 'get', path: '/v1.0/{project_id}/kms/aliases', status: 200 }, 'kms:alias:list', (ctx, query) => aliases.listAliases(ctx, query ?? {})),
    declaredOperation({ name: 'delete-alias', method: 'delete', path: '/v1.0/{project_id}/kms/aliases', status: 204 }, 'kms:alias:delete', (ctx, body) => aliases.deleteAlias(ctx, body)),
    declaredOperation({ name: 'associate-alias', method: 'post', path: '/v1.0/{project_id}/kms/alias/associate', status: 200 }, 'kms:alias:associate', (ctx, body) => aliases.associateAlias(ctx, body)),
  ];
}
