import type { DataService } from '../../kms/data-service';
import type { RandomService } from '../../kms/random-service';
import type { ReEncryptService } from '../../kms/reencrypt-service';
import { operation, type Operation } from '../operation';

export interface DataOperationsDeps {
  readonly data: DataService;
  readonly random: RandomService;
  readonly reEncrypt: ReEncryptService;
}

/**
 * Small data, random numbers and re-encryption. re-encrypt has no action of its own in the API's
 * IAM model: it decrypts and encrypts with CMKs, so it asks for kms:cmk:crypto, as encrypt-data and
 * decrypt-data do, for data key blobs too.
 */
export function dataOperations(deps: DataOperationsDeps): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/encrypt-data', 'kms:cmk:crypto', (ctx, body) => deps.data.encryptData(ctx, body)),
    operation('/v1.0/{project_id}/kms/decrypt-data', 'kms:cmk:crypto', (ctx, body) => deps.data.decryptData(ctx, body)),
    operation('/v1.0/{project_id}/kms/gen-random', 'kms:cmk:generate', (_ctx, body) => deps.random.genRandom(body)),
    operation('/v1.0/{project_id}/kms/re-encrypt', 'kms:cmk:crypto', (ctx, body) => deps.reEncrypt.reEncrypt(ctx, body)),
  ];
}
