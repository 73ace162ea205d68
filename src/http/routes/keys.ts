import type { KeyService } from '../../kms/key-service';
import { operation, type Operation } from '../operation';

/** The key lifecycle endpoints. */
export function keyOperations(keys: KeyService): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/create-key', 'kms:cmk:create', (ctx, body) => keys.createKey(ctx, body)),
    operation('/v1.0/{project_id}/kms/describe-key', 'kms:cmk:get', (ctx, body) => keys.describeKey(ctx, body)),
    operation('/v1.0/{project_id}/kms/list-keys', 'kms:cmk:list', (ctx, body) => keys.listKeys(ctx, body ?? {})),
    operation('/v1.0/{project_id}/kms/enable-key', 'kms:cmk:enable', (ctx, body) => keys.enableKey(ctx, body)),
    operation('/v1.0/{project_id}/kms/disable-key', 'kms:cmk:disable', (ctx, body) => keys.disableKey(ctx, body)),
    operation('/v1.0/{project_id}/kms/schedule-key-deletion', 'kms:cmk:update', (ctx, body) => keys.scheduleKeyDeletion(ctx, body)),
    operation('/v1.0/{project_id}/kms/cancel-key-deletion', 'kms:cmk:update', (ctx, body) => keys.cancelKeyDeletion(ctx, body)),
    operation('/v1.0/{project_id}/kms/update-key-alias', 'kms:cmk:update', (ctx, body) => keys.updateKeyAlias(ctx, body)),
    operation('/v1.0/{project_id}/kms/update-key-description', 'kms:cmk:update', (ctx, body) => keys.updateKeyDescription(ctx, body)),
  ];
}
