import type { DataKeyService } from '../../kms/datakey-service';
import { operation, type Operation } from '../operation';

/** The data key endpoints. */
export function dataKeyOperations(dataKeys: DataKeyService): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/create-datakey', 'kms:dek:create', (ctx, body) => dataKeys.createDataKey(ctx, body)),
    operation('/v1.0/{project_id}/kms/create-datakey-without-plaintext', 'kms:dek:create', (ctx, body) => dataKeys.createDataKeyWithoutPlaintext(ctx, body)),
    operation('/v1.0/{project_id}/kms/encrypt-datakey', 'kms:dek:crypto', (ctx, body) => dataKeys.encryptDataKey(ctx, body)),
    operation('/v1.0/{project_id}/kms/decrypt-datakey', 'kms:dek:crypto', (ctx, body) => dataKeys.decryptDataKey(ctx, body)),
  ];
}
