import type { SigningService } from '../../kms/signing-service';
import { operation, type Operation } from '../operation';

/** Signatures and public keys of key pairs, each with the IAM action Huawei KMS names for it. */
export function signingOperations(signing: SigningService): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/sign', 'kms:cmk:sign', (ctx, body) => signing.sign(ctx, body)),
    operation('/v1.0/{project_id}/kms/verify', 'kms:cmk:verify', (ctx, body) => signing.verify(ctx, body)),
    operation('/v1.0/{project_id}/kms/get-publickey', 'kms:cmk:getPublicKey', (ctx, body) => signing.getPublicKey(ctx, body)),
  ];
}
