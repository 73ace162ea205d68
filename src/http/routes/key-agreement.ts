import type { KeyAgreementService } from '../../kms/key-agreement-service';
import { operation, type Operation } from '../operation';

/**
 * derive-shared-secret. The API pages name no IAM action of its own for it (the reference lists
 * none): kms:cmk:deriveSharedSecret, in the family's camelCase, keeps it apart from kms:cmk:crypto,
 * since a shared secret leaves the service in the clear.
 */
export function keyAgreementOperations(agreement: KeyAgreementService): Operation[] {
  return [operation('/v1.0/{project_id}/kms/derive-shared-secret', 'kms:cmk:deriveSharedSecret', (ctx, body) => agreement.deriveSharedSecret(ctx, body))];
}
