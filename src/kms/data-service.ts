import { KmsError } from '../errors';
import type { DecryptDataRequest, DecryptDataResponse, EncryptDataRequest, EncryptDataResponse } from './api-types';
import type { RequestContext } from './context';
import { dataBlobFromText, dataBlobToText } from './data-blob-codec';
import type { KeyService } from './key-service';
import { checkedBinding, symmetricAlgorithm, type Sealer } from './sealing';

/** encrypt-data's plaintext limit, in bytes of UTF-8. */
export const MAX_DATA_BYTES = 4096;
/** A UTF-16 surrogate without its partner: it has no UTF-8 form, and would be sealed as U+FFFD. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export interface DataServiceDeps {
  readonly keys: KeyService;
  readonly sealer: Sealer;
}

/**
 * Small data under customer master keys (encrypt-data, decrypt-data): the caller's plaintext is
 * sealed in the HSM, and the data blob names its key and material version, so decrypt-data finds
 * the key without a key_id. The binding rules are the data keys'; the purpose `data` in the
 * additional data keeps a data blob from ever opening as a data key, and the reverse.
 */
export class DataService {
  constructor(private readonly deps: DataServiceDeps) {}

  async encryptData(ctx: RequestContext, request: EncryptDataRequest): Promise<EncryptDataResponse> {
    const key = await this.deps.keys.usableKey(ctx, request.key_id);
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
    const blob = dataBlobFromText(request.cipher_text);
    // The blob names its key; a key_id, when sent, must be that key (checked by the sealer).
    const key = await this.deps.keys.usableKey(ctx, request.key_id ?? blob.keyId);
    symmetricAlgorithm(request.encryption_algorithm);
    const binding = checkedBinding(request.encryption_context, request.additional_authenticated_data);
    const plaintext = await this.deps.sealer.open(ctx, 'data', key, blob, binding);
    try {
      // Every plaintext sealed here was a JSON string's UTF-8, so it decodes back exactly.
      return { key_id: key.keyId, plain_text: plaintext.toString('utf8'), plain_text_base64: plaintext.toString('base64') };
    } finally {
      plaintext.fill(0);
    }
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
