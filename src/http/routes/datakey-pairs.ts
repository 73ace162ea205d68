import type { DataKeyPairService } from '../../kms/datakey-pair-service';
import { operation, type Operation } from '../operation';

/**
 * The data key pair endpoints. Their permission is kms:dek:createDatakeyPair: in the data key
 * family (kms:dek:*), as create-datakey's kms:dek:create, yet apart from it, since the answer
 * holds a private key (Huawei's identity policies name the action kms:cmk:createDataKeyPair; its
 * role-based actions, which this service follows, name none for these operations).
 */
export function dataKeyPairOperations(pairs: DataKeyPairService): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/create-rsa-datakey-pair', 'kms:dek:createDatakeyPair', (ctx, body) => pairs.createRsaDataKeyPair(ctx, body)),
    operation('/v1.0/{project_id}/kms/create-ec-datakey-pair', 'kms:dek:createDatakeyPair', (ctx, body) => pairs.createEcDataKeyPair(ctx, body)),
  ];
}
