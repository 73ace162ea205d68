import type {
  CreateKeyRequest,
  ListKeysRequest,
  OperateKeyRequest,
  ScheduleKeyDeletionRequest,
  UpdateKeyAliasRequest,
  UpdateKeyDescriptionRequest,
} from '../../kms/api-types';
import type { KeyService } from '../../kms/key-service';
import { operation, type Operation } from '../operation';

/** The key lifecycle endpoints. */
export function keyOperations(keys: KeyService): Operation[] {
  return [
    operation<CreateKeyRequest>('create-key', 'kms:cmk:create', (ctx, body) => keys.createKey(ctx, body)),
    operation<OperateKeyRequest>('describe-key', 'kms:cmk:get', (ctx, body) => keys.describeKey(ctx, body)),
    operation<ListKeysRequest | undefined>('list-keys', 'kms:cmk:list', (ctx, body) => keys.listKeys(ctx, body ?? {})),
    operation<OperateKeyRequest>('enable-key', 'kms:cmk:enable', (ctx, body) => keys.enableKey(ctx, body)),
    operation<OperateKeyRequest>('disable-key', 'kms:cmk:disable', (ctx, body) => keys.disableKey(ctx, body)),
    operation<ScheduleKeyDeletionRequest>('schedule-key-deletion', 'kms:cmk:update', (ctx, body) => keys.scheduleKeyDeletion(ctx, body)),
    operation<OperateKeyRequest>('cancel-key-deletion', 'kms:cmk:update', (ctx, body) => keys.cancelKeyDeletion(ctx, body)),
    operation<UpdateKeyAliasRequest>('update-key-alias', 'kms:cmk:update', (ctx, body) => keys.updateKeyAlias(ctx, body)),
    operation<UpdateKeyDescriptionRequest>('update-key-description', 'kms:cmk:update', (ctx, body) => keys.updateKeyDescription(ctx, body)),
  ];
}
