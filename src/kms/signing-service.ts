import { KmsError } from '../errors';
import type { Hsm, SigningAlgorithm } from '../hsm/hsm';
import type { ApiSigningAlgorithm, OperateKeyRequest, PublicKeyResponse, SignRequest, SignResponse, VerifyRequest, VerifyResponse } from './api-types';
import type { RequestContext } from './context';
import type { KeyService } from './key-service';
import { currentMaterial, recordSpec } from './key-specs';
import { strictBase64 } from './strict-base64';

/** The message (or digest) is under 4096 bytes, as the API has it. */
const MAX_MESSAGE_BYTES = 4095;

export interface SigningServiceDeps {
  readonly keys: KeyService;
  readonly hsm: Hsm;
}

/**
 * The seam's name for each signing_algorithm the API takes: the SDK names pure Ed25519
 * ED25519_SHA_512. SM2DSA_SM3 (no SM mechanisms here) and ED25519_PH_SHA_512 (HashEdDSA, which
 * the modules here lack) have none, and are refused.
 */
const ALGORITHMS: Partial<Record<ApiSigningAlgorithm, SigningAlgorithm>> = {
  RSASSA_PSS_SHA_256: 'RSASSA_PSS_SHA_256',
  RSASSA_PSS_SHA_384: 'RSASSA_PSS_SHA_384',
  RSASSA_PSS_SHA_512: 'RSASSA_PSS_SHA_512',
  RSASSA_PKCS1_V1_5_SHA_256: 'RSASSA_PKCS1_V1_5_SHA_256',
  RSASSA_PKCS1_V1_5_SHA_384: 'RSASSA_PKCS1_V1_5_SHA_384',
  RSASSA_PKCS1_V1_5_SHA_512: 'RSASSA_PKCS1_V1_5_SHA_512',
  ECDSA_SHA_256: 'ECDSA_SHA_256',
  ECDSA_SHA_384: 'ECDSA_SHA_384',
  ECDSA_SHA_512: 'ECDSA_SHA_512',
  ED25519_SHA_512: 'EDDSA',
};

/**
 * sign, verify and get-publickey with key pairs whose private keys never leave the HSM. The key
 * must be an enabled key pair made for SIGN_VERIFY (key-purpose.ts), checked before the HSM is
 * asked; the algorithm must fit its spec (the HSM's signing role refuses one that does not,
 * KMS.0332). The audit record names the key and the algorithm (ctx.actedOn), never the message or
 * the signature.
 */
export class SigningService {
  constructor(private readonly deps: SigningServiceDeps) {}

  async sign(ctx: RequestContext, request: SignRequest): Promise<SignResponse> {
    const { key, input } = await this.signatureInput(ctx, request);
    const signature = await this.deps.hsm.signing.sign(key.ref, input);
    return { key_id: key.record.keyId, signature: signature.toString('base64') };
  }

  async verify(ctx: RequestContext, request: VerifyRequest): Promise<VerifyResponse> {
    const { key, input } = await this.signatureInput(ctx, request);
    const signature = base64Bytes(request.signature, 'signature', 0);
    const valid = await this.deps.hsm.signing.verify(key.ref, input, signature);
    // A string, as the SDK's model types it.
    return { key_id: key.record.keyId, signature_valid: valid ? 'true' : 'false' };
  }

  /** PEM of the DER SubjectPublicKeyInfo with CRLF line endings, as Huawei KMS answers it. */
  async getPublicKey(ctx: RequestContext, request: OperateKeyRequest): Promise<PublicKeyResponse> {
    const record = await this.deps.keys.usableKey(ctx, request.key_id, 'publicKey');
    const der = await this.deps.hsm.keyPairs.publicKey(currentMaterial(record), recordSpec(record));
    return { key_id: record.keyId, public_key: pem(der) };
  }

  private async signatureInput(ctx: RequestContext, request: SignRequest | VerifyRequest) {
    const record = await this.deps.keys.usableKey(ctx, request.key_id, 'sign');
    ctx.actedOn.algorithm = request.signing_algorithm;
    const algorithm = ALGORITHMS[request.signing_algorithm];
    if (algorithm === undefined || !this.deps.hsm.supportsAlgorithm(algorithm)) {
      throw new KmsError('KMS.0332', { detail: `signing_algorithm: ${request.signing_algorithm} is not supported by this service's HSM.` });
    }
    const message = base64Bytes(request.message, 'message', 1);
    return {
      key: { record, ref: currentMaterial(record) },
      input: { spec: recordSpec(record), algorithm, messageType: request.message_type ?? 'DIGEST', message },
    };
  }
}


/** Strict base64 (the schema checked the alphabet) of `min` to MAX_MESSAGE_BYTES bytes, or KMS.0308 naming the field. */
function base64Bytes(text: string, field: string, min: number): Buffer {
  const bytes = strictBase64(text);
  if (bytes === undefined || bytes.length < min || bytes.length > MAX_MESSAGE_BYTES) {
    throw new KmsError('KMS.0308', { detail: `${field} must be base64 of ${min} to ${MAX_MESSAGE_BYTES} bytes.` });
  }
  return bytes;
}

function pem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return ['-----BEGIN PUBLIC KEY-----', ...lines, '-----END PUBLIC KEY-----', ''].join('\r\n');
}
