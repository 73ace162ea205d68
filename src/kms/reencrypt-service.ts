import { KmsError } from '../errors';
import type { KeyRecord } from '../domain/keys';
import type { ReEncryptRequest, ReEncryptResponse } from './api-types';
import type { BlobPurpose } from './binding';
import { dataKeyLength, decodeBlob, encodeBlob } from './blob-codec';
import type { Blob } from './blob-frame';
import type { RequestContext } from './context';
import { base64BlobFromText, base64BlobToText } from './data-blob-codec';
import { isRsaEncryptionKey, type KeyPurpose } from './key-purpose';
import type { KeyService } from './key-service';
import { isOaep, oaepAlgorithm, type RsaDataCipher } from './rsa-data';
import { checkedBinding, symmetricAlgorithm, type CheckedBinding, type Sealer } from './sealing';

const MAX_DATAKEY_BYTES = 1024;
const HEX = /^[0-9a-fA-F]+$/;

export interface ReEncryptServiceDeps {
  readonly keys: KeyService;
  readonly sealer: Sealer;
  /** Opens RSA-OAEP sources (in the HSM). */
  readonly rsa: RsaDataCipher;
}

/** A cipher_text of either kind, read from its text: the kind decides the codec and the purpose. */
interface SourceBlob {
  readonly purpose: BlobPurpose;
  readonly blob: Blob;
}

/** What re-encrypt moves: its key and algorithm, the purpose the destination seals it with, and how to open it. */
interface Source {
  readonly key: KeyRecord;
  readonly algorithm: ReEncryptResponse['source_encryption_algorithm'];
  readonly purpose: BlobPurpose;
  /** A data key blob, whose datakey_cipher_length is checked. */
  readonly dataKeyBlob?: Blob;
  open(binding: CheckedBinding): Promise<Buffer>;
}

/** Where re-encrypt puts the plaintext: the destination's algorithm, and its encryption as the response's cipher_text. */
interface Destination {
  readonly algorithm: ReEncryptResponse['destination_encryption_algorithm'];
  encrypt(plaintext: Buffer): Promise<string>;
}

/**
 * re-encrypt: opens a ciphertext under its key (source) and seals it under another key, or under
 * the newest material version of the same one (destination), inside the service: the plaintext is
 * never in a response. As the API defines, a data key blob (hex) becomes a data key blob and a data
 * blob of encrypt-data (base64) a data blob, and a private-key blob of a data key pair (base64) a
 * private-key blob; each keeps its purpose in the additional data. The
 * source binding must be the one the blob was sealed with; the destination binding is applied.
 *
 * An RSA-OAEP ciphertext of encrypt-data (source_encryption_algorithm RSAES_OAEP_SHA_256 or
 * RSAES_OAEP_SHA_1, as the API's enum has them) is a source too: it names no key, so it needs
 * source_key_id, an RSA key made for ENCRYPT_DECRYPT; it is decrypted in the HSM and sealed under
 * the destination as a data blob, which decrypt-data opens (its plaintext may be any bytes:
 * plain_text_base64 carries them exactly). It is bound to nothing, so a source binding is refused.
 * The destination is an AES_256 key (an asymmetric destination_encryption_algorithm is KMS.2105),
 * or an RSA key made for ENCRYPT_DECRYPT with destination_encryption_algorithm RSAES_OAEP_SHA_256
 * or RSAES_OAEP_SHA_1 (another KMS.2106): the plaintext of any source, encrypted with RSA-OAEP, as
 * encrypt-data would (rsaDestination).
 */
export class ReEncryptService {
  constructor(private readonly deps: ReEncryptServiceDeps) {}

  async reEncrypt(ctx: RequestContext, request: ReEncryptRequest): Promise<ReEncryptResponse> {
    // Every re-encrypt record names its source key: null until one is found.
    ctx.actedOn.sourceKeyId = null;
    const source = await this.source(ctx, request);
    // 'data': an AES key seals a blob; an RSA key made for ENCRYPT_DECRYPT encrypts with RSA-OAEP.
    const destinationKey = await this.deps.keys.usableKey(ctx, request.destination_key_id, 'data');
    const destination = isRsaEncryptionKey(destinationKey) ? this.rsaDestination(ctx, request, source, destinationKey) : this.blobDestination(ctx, request, source, destinationKey);
    if (request.datakey_cipher_length !== undefined) checkDataKeyLength(source.dataKeyBlob, request.datakey_cipher_length);
    const sourceBinding = checkedBinding(request.source_encryption_context, request.source_additional_authenticated_data);

    const plaintext = await source.open(sourceBinding);
    if (source.purpose === 'privateKey') ctx.actedOn.blob = 'private-key';
    let cipherText: string;
    try {
      // encrypt-data never makes an empty data blob, and an OAEP ciphertext may hold nothing.
      if (plaintext.length === 0) throw new KmsError('KMS.2101', { detail: 'The ciphertext holds no plaintext to seal.' });
      cipherText = await destination.encrypt(plaintext);
    } finally {
      plaintext.fill(0);
    }
    return {
      key_id: destinationKey.keyId,
      source_key_id: source.key.keyId,
      source_encryption_algorithm: source.algorithm,
      destination_encryption_algorithm: destination.algorithm,
      cipher_text: cipherText,
    };
  }

  /** An AES destination: the plaintext sealed as a blob of the source's kind, with the destination binding. */
  private blobDestination(ctx: RequestContext, request: ReEncryptRequest, source: Source, key: KeyRecord): Destination {
    const algorithm = symmetricAlgorithm(request.destination_encryption_algorithm);
    const binding = checkedBinding(request.destination_encryption_context, request.destination_additional_authenticated_data);
    return {
      algorithm,
      encrypt: async (plaintext) => {
        const sealed = await this.deps.sealer.seal(ctx, source.purpose, key, plaintext, binding);
        return source.purpose === 'datakey' ? encodeBlob(sealed).toString('hex').toUpperCase() : base64BlobToText({ purpose: source.purpose, blob: sealed });
      },
    };
  }

  /**
   * An RSA destination: the plaintext encrypted with RSA-OAEP under its public key, base64 of the
   * block as encrypt-data answers it, which decrypt-data with that key opens. It is bound to
   * nothing, so a destination binding is refused; a plaintext longer than the modulus and hash
   * take is KMS.2108. A data key pair's private-key blob is refused (KMS.0325): it stays a
   * private-key blob, which no other kind of ciphertext passes for. All is checked before the
   * source is opened. The audit record's algorithm stays the source's.
   */
  private rsaDestination(ctx: RequestContext, request: ReEncryptRequest, source: Source, key: KeyRecord): Destination {
    const algorithm = this.deps.rsa.offeredAlgorithm(request.destination_encryption_algorithm, 'destination_encryption_algorithm');
    if (request.destination_encryption_context !== undefined || request.destination_additional_authenticated_data !== undefined) {
      throw new KmsError('KMS.0308', { detail: 'destination_encryption_context and destination_additional_authenticated_data do not apply to RSA-OAEP: its ciphertext is bound to nothing.' });
    }
    if (source.purpose === 'privateKey') {
      throw new KmsError('KMS.0325', { detail: 'A data key pair\'s private-key blob moves to an AES_256 key only: it stays a private-key blob.' });
    }
    return {
      algorithm,
      encrypt: async (plaintext) => {
        const recorded = ctx.actedOn.algorithm;
        try {
          return (await this.deps.rsa.encrypt(ctx, key, algorithm, plaintext, "the ciphertext's plaintext")).toString('base64');
        } finally {
          ctx.actedOn.algorithm = recorded;
        }
      },
    };
  }

  /**
   * The source. With source_key_id the key decides, as decrypt-data's key_id does: an RSA key made
   * for ENCRYPT_DECRYPT takes an RSA-OAEP ciphertext, any other a blob of this service. Without it,
   * the cipher_text is a blob, which names its key.
   */
  private async source(ctx: RequestContext, request: ReEncryptRequest): Promise<Source> {
    if (request.source_key_id === undefined) {
      if (isOaep(request.source_encryption_algorithm) && !isBlobText(request.cipher_text)) {
        throw new KmsError('KMS.0308', { detail: `source_key_id: re-encrypt with ${request.source_encryption_algorithm} needs the RSA key's id.` });
      }
      const parsed = sourceBlob(request.cipher_text);
      // Only an AES key seals blobs: one naming another kind of key is refused as before (KMS.0325, KMS.0341).
      const key = await this.sourceKey(ctx, parsed.blob.keyId, 'seal');
      return this.blobSource(ctx, parsed, key, symmetricAlgorithm(request.source_encryption_algorithm));
    }
    // 'data': an AES key, or an RSA key made for ENCRYPT_DECRYPT (an RSA-OAEP source).
    const key = await this.sourceKey(ctx, request.source_key_id, 'data');
    if (isRsaEncryptionKey(key)) return this.rsaSource(ctx, request, key);
    // An AES key with OAEP is KMS.2105 whatever the cipher_text, as in decrypt-data.
    const algorithm = symmetricAlgorithm(request.source_encryption_algorithm);
    return this.blobSource(ctx, sourceBlob(request.cipher_text), key, algorithm);
  }

  private blobSource(ctx: RequestContext, parsed: SourceBlob, key: KeyRecord, algorithm: Source['algorithm']): Source {
    return {
      key,
      algorithm,
      purpose: parsed.purpose,
      ...(parsed.purpose === 'datakey' ? { dataKeyBlob: parsed.blob } : {}),
      open: (binding) => this.deps.sealer.open(ctx, parsed.purpose, key, parsed.blob, binding),
    };
  }

  private rsaSource(ctx: RequestContext, request: ReEncryptRequest, key: KeyRecord): Source {
    const algorithm = oaepAlgorithm(request.source_encryption_algorithm);
    if (request.source_encryption_context !== undefined || request.source_additional_authenticated_data !== undefined) {
      throw new KmsError('KMS.0308', { detail: 'source_encryption_context and source_additional_authenticated_data do not apply to RSA-OAEP: its ciphertext is bound to nothing.' });
    }
    return { key, algorithm, purpose: 'data', open: () => this.deps.rsa.decrypt(ctx, key, algorithm, request.cipher_text) };
  }

  /**
   * The source key, recorded for the audit as the source (ctx.actedOn.sourceKeyId) whether or not
   * it may be used; ctx.actedOn.keyId stays for the destination, the key the request seals under.
   */
  private async sourceKey(ctx: RequestContext, keyId: string, purpose: KeyPurpose): Promise<KeyRecord> {
    const lookup: RequestContext = { ...ctx, actedOn: { keyId: null } };
    try {
      return await this.deps.keys.usableKey(lookup, keyId, purpose);
    } finally {
      ctx.actedOn.sourceKeyId = lookup.actedOn.keyId;
    }
  }
}

/** Whether a cipher_text reads as a blob of this service (of any kind), without saying why not. */
function isBlobText(text: string): boolean {
  try {
    sourceBlob(text);
    return true;
  } catch {
    return false;
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
 * is GCM, so it may be left out, and it says nothing about a data blob or an RSA ciphertext.
 */
function checkDataKeyLength(dataKeyBlob: Blob | undefined, value: string): void {
  const length = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(length >= 1 && length <= MAX_DATAKEY_BYTES)) {
    throw new KmsError('KMS.0308', { detail: `datakey_cipher_length must be 1 to ${MAX_DATAKEY_BYTES}.` });
  }
  if (dataKeyBlob !== undefined && dataKeyLength(dataKeyBlob) !== length) throw new KmsError('KMS.2204');
}
