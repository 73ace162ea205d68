import type { CreateDatakeyRequest, DecryptDatakeyRequest, EncryptDatakeyRequest } from '../../kms/api-types';
import type { DataKeyService } from '../../kms/datakey-service';
import { operation, type Operation } from '../operation';

/** The data key endpoints. */
export function dataKeyOperations(dataKeys: DataKeyService): Operation[] {
  return [
    operation<CreateDatakeyRequest>('create-datakey', 'kms:dek:create', (ctx, body) => dataKeys.createDataKey(ctx, body)),
    operation<CreateDatakeyRequest>('create-datakey-without-plaintext', 'kms:dek:create', (ctx, body) =>
      dataKeys.createDataKeyWithoutPlaintext(ctx, body),
    ),
    operation<EncryptDatakeyRequest>('encrypt-datakey', 'kms:dek:crypto', (ctx, body) => dataKeys.encryptDataKey(ctx, body)),
    operation<DecryptDatakeyRequest>('decrypt-datakey', 'kms:dek:crypto', (ctx, body) => dataKeys.decryptDataKey(ctx, body)),
  ];
}
