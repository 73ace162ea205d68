import { KmsError } from '../errors';
import type { KeyRecord } from '../domain/keys';
import type { DecryptDataRequest, DecryptDataResponse, EncryptDataRequest, EncryptDataResponse } from './api-types';
import type { RequestContext } from './context';
import { base64BlobFromText, dataBlobToText, type Base64Blob } from './data-blob-codec';
import { isRsaEncryptionKey } from './key-purpose';
import type { KeyService } from './key-service';
import { isOaep, type RsaDataCipher } from './rsa-data';
import { checkedBinding, symmetricAlgorithm, type Sealer } from './sealing';

/** encrypt-data's plaintext limit, in bytes of UTF-8. */
export const MAX_DATA_BYTES = 4096;
/** A UTF-16 surrogate without its partner: it has no UTF-8 form, and would be sealed as U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface DataServiceDeps {
  readonly keys: KeyService;
  readonly sealer: Sealer;
  readonly rsa: RsaDataCipher;
}

/**
 * Small data under customer master keys (encrypt-data, decrypt-data): the caller's plaintext is
 * sealed in the HSM, and the data blob names its key and material version, so decrypt-data finds
 * the key without a key_id. The binding rules are the data keys'; the purpose `data` in the
 * additional data keeps a data blob from ever opening as a data key, and the reverse.
 * With an RSA key pair made for ENCRYPT_DECRYPT they are RSA-OAEP instead (rsa-data.ts): no blob,
 * no binding, and decrypt-data then needs key_id.
 * decrypt-data also opens the private-key blob of a data key pair (datakey-pair-service.ts), as
 * the general decryption that create-rsa- and create-ec-datakey-pair leave it to: its format names
 * it, and it opens under the purpose `privateKey` only, so that no data blob passes for one.
 */
export class DataService {
  constructor(private readonly deps: DataServiceDeps) {}

  async encryptData(ctx: RequestContext, request: EncryptDataRequest): Promise<EncryptDataResponse> {
    const key = await this.deps.keys.usableKey(ctx, request.key_id, 'data');
    if (isRsaEncryptionKey(key)) {
      noBinding(request);
      const plaintext = plaintextBytes(request.plain_text);
      try {
        const ciphertext = await this.deps.rsa.encrypt(ctx, key, request.encryption_algorithm, plaintext);
        return { key_id: key.keyId, cipher_text: ciphertext.toString('base64') };
      } finally {
        plaintext.fill(0);
      }
    }
    symmetricAlgorithm(request.encryption_algorithm);
    const binding = checkedBinding(request.encryption_context, request.additional_authenticated_data);
    const plaintext = plaintextBytes(request.plain_text);
    try {
      const blob = await this.deps.sealer.seal(ctx, 'data', key, plaintext, binding);
      return { key_id: key.keyId, cipher_text: dataBlobToText(blob) };
    } finally {
      plaintext.fill(0);
    }
  }

  async decryptData(ctx: RequestContext, request: DecryptDataRequest): Promise<DecryptDataResponse> {
    let key: KeyRecord;
    let sealed: Base64Blob;
    if (request.key_id === undefined) {
      // An RSA ciphertext names no key, so RSA-OAEP needs the key_id; a data blob names its own.
      if (isOaep(request.encryption_algorithm)) throw new KmsError('KMS.0308', { detail: `key_id: decrypt-data with ${request.encryption_algorithm} needs the key's id.` });
      sealed = base64BlobFromText(request.cipher_text);
      key = await this.deps.keys.usableKey(ctx, sealed.blob.keyId);
      symmetricAlgorithm(request.encryption_algorithm);
    } else {
      // The key decides which kind of cipher_text this is; a data blob must be that key's (checked by the sealer).
      key = await this.deps.keys.usableKey(ctx, request.key_id, 'data');
      if (isRsaEncryptionKey(key)) {
        noBinding(request);
        return answer(key.keyId, await this.deps.rsa.decrypt(ctx, key, request.encryption_algorithm, request.cipher_text));
      }
      symmetricAlgorithm(request.encryption_algorithm);
      sealed = base64BlobFromText(request.cipher_text);
    }
    const binding = checkedBinding(request.encryption_context, request.additional_authenticated_data);
    const plaintext = await this.deps.sealer.open(ctx, sealed.purpose, key, sealed.blob, binding);
    // Recorded once opened: what was done, not what the blob's format claimed.
    if (sealed.purpose === 'privateKey') ctx.actedOn.blob = 'private-key';
    return answer(key.keyId, plaintext);
  }
}

/**
 * An RSA-OAEP ciphertext is bound to nothing (its label is empty, as every KMS has it): a binding
 * sent with one is refused rather than ignored, so that no caller believes its data bound.
 */
function noBinding(request: Pick<EncryptDataRequest, 'encryption_context' | 'additional_authenticated_data'>): void {
  if (request.encryption_context !== undefined || request.additional_authenticated_data !== undefined) {
    throw new KmsError('KMS.0308', { detail: 'encryption_context and additional_authenticated_data do not apply to RSA-OAEP: its ciphertext is bound to nothing.' });
  }
}

/**
 * decrypt-data's answer, wiping the plaintext. A plaintext encrypt-data or a data key pair sealed
 * was a JSON string's UTF-8, so plain_text decodes back exactly; an RSA ciphertext made elsewhere
 * may hold any bytes, and so may the data blob re-encrypt made of one: plain_text_base64 carries
 * them exactly.
 */
function answer(keyId: string, plaintext: Buffer): DecryptDataResponse {
  try {
    return { key_id: keyId, plain_text: plaintext.toString('utf8'), plain_text_base64: plaintext.toString('base64') };
  } finally {
    plaintext.fill(0);
  }
}

/** plain_text as the bytes to seal: well-formed Unicode, 1 to 4096 bytes of UTF-8, or KMS.2101. */
function plaintextBytes(text: string): Buffer {
  if (LONE_SURROGATE.test(text)) throw new KmsError('KMS.2101', { detail: 'plain_text must be well-formed Unicode.' });
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length < 1 || bytes.length > MAX_DATA_BYTES) {
    bytes.fill(0);
    throw new KmsError('KMS.2101', { detail: `plain_text must be 1 to ${MAX_DATA_BYTES} bytes as UTF-8.` });
  }
  return bytes;
}
