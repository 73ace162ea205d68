import { KmsError } from '../errors';
import type { Hsm, MaterialRef } from '../hsm/hsm';
import type { EncryptionAlgorithm } from './api-types';
import type { KeyRecord } from '../domain/keys';
import { canonicalContext, checkedAad, encodeBinding, type BlobPurpose } from './binding';
import type { Blob } from './blob-frame';
import type { RequestContext } from './context';

export const SYMMETRIC_DEFAULT = 'SYMMETRIC_DEFAULT';

/**
 * An encryption_algorithm field: every key here is a symmetric AES-256 key, so only
 * SYMMETRIC_DEFAULT (also when the field is left out) applies; the asymmetric ones are KMS.2105.
 */
export function symmetricAlgorithm(algorithm: EncryptionAlgorithm | undefined): typeof SYMMETRIC_DEFAULT {
  if (algorithm !== undefined && algorithm !== SYMMETRIC_DEFAULT) throw new KmsError('KMS.2105');
  return SYMMETRIC_DEFAULT;
}

/** A caller's binding fields, checked and in canonical form: what goes into the additional data. */
export interface CheckedBinding {
  readonly context: string;
  readonly aad: string;
}

/**
 * Checks a caller's encryption_context (KMS.0208) and additional_authenticated_data (KMS.0308)
 * before anything is asked of the HSM.
 */
export function checkedBinding(encryptionContext: unknown, additionalAuthenticatedData: string | undefined): CheckedBinding {
  return { context: canonicalContext(encryptionContext), aad: checkedAad(additionalAuthenticatedData) };
}

/** Counts seals per material version (the GCM IV budget: seal-usage.ts). */
export interface SealCounter {
  count(ref: MaterialRef): void;
}

/**
 * Seals and opens blobs of a purpose under a CMK, in the HSM, for encrypt-data, decrypt-data and
 * re-encrypt: a seal uses the key's current material version, an opening the version the blob
 * carries; the additional data names the purpose, key, version, project and the caller's binding.
 */
export class Sealer {
  constructor(
    private readonly hsm: Hsm,
    private readonly usage: SealCounter,
  ) {}

  async seal(ctx: RequestContext, purpose: BlobPurpose, key: KeyRecord, plaintext: Buffer, binding: CheckedBinding): Promise<Blob> {
    const version = key.materialVersion;
    const ref = { keyId: key.keyId, version };
    // Counted before the call: an encryption whose answer is lost may still have used an IV.
    this.usage.count(ref);
    const sealed = await this.hsm.symmetric.encrypt(ref, plaintext, additionalData(ctx, purpose, key, version, binding));
    return { keyId: key.keyId, materialVersion: version, ...sealed };
  }

  /** The blob's plaintext; the caller wipes it. KMS.2201 for a blob of another key, or one GCM refuses. */
  async open(ctx: RequestContext, purpose: BlobPurpose, key: KeyRecord, blob: Blob, binding: CheckedBinding): Promise<Buffer> {
    if (blob.keyId !== key.keyId) throw new KmsError('KMS.2201', { detail: 'The ciphertext belongs to another key.' });
    // Material versions are added one at a time from 0 and never removed while the key exists.
    if (blob.materialVersion > key.materialVersion) throw new KmsError('KMS.2201');
    const ref = { keyId: key.keyId, version: blob.materialVersion };
    return this.hsm.symmetric.decrypt(ref, blob, additionalData(ctx, purpose, key, blob.materialVersion, binding));
  }
}

function additionalData(ctx: RequestContext, purpose: BlobPurpose, key: KeyRecord, materialVersion: number, binding: CheckedBinding): Buffer {
  return encodeBinding({ purpose, keyId: key.keyId, materialVersion, projectId: ctx.projectId, context: binding.context, aad: binding.aad });
}
