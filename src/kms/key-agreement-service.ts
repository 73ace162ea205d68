import { KmsError } from '../errors';
import type { Hsm } from '../hsm/hsm';
import type { DeriveSharedSecretRequest, DeriveSharedSecretResponse } from './api-types';
import type { RequestContext } from './context';
import type { KeyService } from './key-service';
import { currentMaterial, recordSpec } from './key-specs';
import { strictBase64 } from './strict-base64';

export interface KeyAgreementServiceDeps {
  readonly keys: KeyService;
  readonly hsm: Hsm;
}

/**
 * derive-shared-secret: ECDH between the private key of an EC key pair made for KEY_AGREEMENT,
 * which never leaves the HSM, and a peer's public key (DER SubjectPublicKeyInfo in base64, on the
 * key's curve: the HSM's key agreement role refuses another curve or a point off it, KMS.0308).
 * The shared secret is answered in base64, as the API has it: returning it is the operation's
 * purpose. The audit record names the key and ECDH, never the peer key or the secret. A
 * `recipient` (an enclave's attestation document, for an encrypted answer) is not served and is
 * refused, so that a caller who asked for the secret encrypted never gets it in the clear.
 */
export class KeyAgreementService {
  constructor(private readonly deps: KeyAgreementServiceDeps) {}

  async deriveSharedSecret(ctx: RequestContext, request: DeriveSharedSecretRequest): Promise<DeriveSharedSecretResponse> {
    const record = await this.deps.keys.usableKey(ctx, request.key_id, 'agree');
    ctx.actedOn.algorithm = request.key_agreement_algorithm;
    if (request.recipient !== undefined) {
      throw new KmsError('KMS.0308', { detail: 'recipient: attestation documents are not supported by this service; the shared secret is answered only in the clear.' });
    }
    const peer = strictBase64(request.public_key);
    if (peer === undefined || peer.length === 0) {
      throw new KmsError('KMS.0308', { detail: 'public_key must be canonical base64 of a DER SubjectPublicKeyInfo.' });
    }
    const secret = await this.deps.hsm.keyAgreement.deriveSharedSecret(currentMaterial(record), recordSpec(record), peer);
    try {
      return { key_id: record.keyId, key_agreement_algorithm: request.key_agreement_algorithm, shared_secret: secret.toString('base64') };
    } finally {
      secret.fill(0);
    }
  }
}

