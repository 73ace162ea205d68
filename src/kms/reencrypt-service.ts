import { KmsError } from '../errors';
import type { KeyRecord } from '../domain/keys';
import type { ReEncryptRequest, ReEncryptResponse } from './api-types';
import type { BlobPurpose } from './binding';
import { dataKeyLength, decodeBlob, encodeBlob } from './blob-codec';
import type { Blob } from './blob-frame';
import type { RequestContext } from './context';
import { base64BlobFromText, base64BlobToText } from './data-blob-codec';
import type { KeyService } from './key-service';
import { checkedBinding, symmetricAlgorithm, type Sealer } from './sealing';

const MAX_DATAKEY_BYTES = 1024;
const HEX = /^[0-9a-fA-F]+$/;

export interface ReEncryptServiceDeps {
  readonly keys: KeyService;
  readonly sealer: Sealer;
}

/** A cipher_text of either kind, read from its text: the kind decides the codec and the purpose. */
interface SourceBlob {
  readonly purpose: BlobPurpose;
  readonly blob: Blob;
}

/**
 * re-encrypt: opens a ciphertext under its key (source) and seals it under another key, or under
 * the newest material version of the same one (destination), inside the service: the plaintext is
 * never in a response. As the API defines, a data key blob (hex) becomes a data key blob and a data
 * blob of encrypt-data (base64) a data blob, and a private-key blob of a data key pair (base64) a
 * private-key blob; each keeps its purpose in the additional data. The
 * source binding must be the one the blob was sealed with; the destination binding is applied.
 */
export class ReEncryptService {
  constructor(private readonly deps: ReEncryptServiceDeps) {}

  async reEncrypt(ctx: RequestContext, request: ReEncryptRequest): Promise<ReEncryptResponse> {
    // Every re-encrypt record names its source key: null until one is found.
    ctx.actedOn.sourceKeyId = null;
    const source = sourceBlob(request.cipher_text);
    const sourceKey = await this.sourceKey(ctx, request.source_key_id ?? source.blob.keyId);
    const sourceAlgorithm = symmetricAlgorithm(request.source_encryption_algorithm);
    const destinationKey = await this.deps.keys.usableKey(ctx, request.destination_key_id);
    const destinationAlgorithm = symmetricAlgorithm(request.destination_encryption_algorithm);
    if (request.datakey_cipher_length !== undefined) checkDataKeyLength(source, request.datakey_cipher_length);
    const sourceBinding = checkedBinding(request.source_encryption_context, request.source_additional_authenticated_data);
    const destinationBinding = checkedBinding(request.destination_encryption_context, request.destination_additional_authenticated_data);

    const plaintext = await this.deps.sealer.open(ctx, source.purpose, sourceKey, source.blob, sourceBinding);
    let sealed: Blob;
    try {
      sealed = await this.deps.sealer.seal(ctx, source.purpose, destinationKey, plaintext, destinationBinding);
    } finally {
      plaintext.fill(0);
    }
    return {
      key_id: destinationKey.keyId,
      source_key_id: sourceKey.keyId,
      source_encryption_algorithm: sourceAlgorithm,
      destination_encryption_algorithm: destinationAlgorithm,
      cipher_text: source.purpose === 'datakey' ? encodeBlob(sealed).toString('hex').toUpperCase() : base64BlobToText({ purpose: source.purpose, blob: sealed }),
    };
  }

  /**
   * The source key, recorded for the audit as the source (ctx.actedOn.sourceKeyId) whether or not
   * it may be used; ctx.actedOn.keyId stays for the destination, the key the request seals under.
   */
  private async sourceKey(ctx: RequestContext, keyId: string): Promise<KeyRecord> {
    const lookup: RequestContext = { ...ctx, actedOn: { keyId: null } };
    try {
      return await this.deps.keys.usableKey(lookup, keyId);
    } finally {
      ctx.actedOn.sourceKeyId = lookup.actedOn.keyId;
    }
  }
}

/**
 * The blob of a cipher_text: hex is a data key blob (as decrypt-datakey takes it), anything else
 * base64 of a data blob or of a data key pair's private-key blob (as decrypt-data takes them). No
 * base64 blob reads as hex: it begins with "AU" or "AV" (data-blob-codec.ts). Each codec refuses
 * what is not its kind: KMS.2201.
 */
function sourceBlob(text: string): SourceBlob {
  if (!HEX.test(text)) return base64BlobFromText(text);
  if (text.length % 2 !== 0) throw new KmsError('KMS.2201', { detail: 'Hex strings need an even number of digits.' });
  return { purpose: 'datakey', blob: decodeBlob(Buffer.from(text, 'hex')) };
}

/**
 * datakey_cipher_length, as in decrypt-datakey: the data key's length in bytes (1 to 1024), which
 * must be the blob's (KMS.2204). The API asks for it for CBC-sealed data keys only; here every blob
 * is GCM, so it may be left out, and it says nothing about a data blob.
 */
function checkDataKeyLength(source: SourceBlob, value: string): void {
  const length = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(length >= 1 && length <= MAX_DATAKEY_BYTES)) {
    throw new KmsError('KMS.0308', { detail: `datakey_cipher_length must be 1 to ${MAX_DATAKEY_BYTES}.` });
  }
  if (source.purpose === 'datakey' && dataKeyLength(source.blob) !== length) throw new KmsError('KMS.2204');
}
