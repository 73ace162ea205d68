import { hash, timingSafeEqual } from 'node:crypto';
import { KmsError, type KmsCode } from '../errors';
import type { Hsm } from '../hsm/hsm';
import type { KeyRecord } from '../domain/keys';
import type {
  BindingFields,
  CreateDatakeyRequest,
  CreateDatakeyResponse,
  CreateDatakeyWithoutPlaintextResponse,
  DecryptDatakeyRequest,
  DecryptDatakeyResponse,
  EncryptDatakeyRequest,
  EncryptDatakeyResponse,
} from './api-types';
import { canonicalContext, checkedAad, encodeBinding } from './binding';
import { dataKeyLength, decodeBlob, encodeBlob } from './blob-codec';
import type { RequestContext } from './context';
import type { KeyService } from './key-service';
import type { SealCounter } from './sealing';

const DIGEST_BYTES = 32;
const DEFAULT_DATAKEY_BYTES = 32;
const MIN_DATAKEY_BITS = 8;
const MAX_DATAKEY_BITS = 8192;
const MAX_DATAKEY_BYTES = 1024;
/** A Map, not an object: key_spec is the client's string, and "constructor" must not find Object.prototype's. */
const KEY_SPEC_BYTES: ReadonlyMap<string, number> = new Map([
  ['AES_128', 16],
  ['AES_256', 32],
]);

export interface DataKeyServiceDeps {
  readonly keys: KeyService;
  readonly hsm: Hsm;
  /** Every seal is counted against its material version's GCM IV budget. */
  readonly usage: SealCounter;
}

const hex = (bytes: Buffer): string => bytes.toString('hex').toUpperCase();
const sha256 = (bytes: Buffer): Buffer => hash('sha256', bytes, 'buffer');

/** A JSON-string length in [1, 1024] bytes, or KMS.0308 naming the field. */
function byteLength(value: string, field: string): number {
  const parsed = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(parsed >= 1 && parsed <= MAX_DATAKEY_BYTES)) {
    throw new KmsError('KMS.0308', { detail: `${field} must be 1 to ${MAX_DATAKEY_BYTES}.` });
  }
  return parsed;
}

/** Hex the schema already limited to hex digits; an odd count is `code`. */
function fromHex(value: string, code: KmsCode): Buffer {
  if (value.length % 2 !== 0) throw new KmsError(code, { detail: 'Hex strings need an even number of digits.' });
  return Buffer.from(value, 'hex');
}

/**
 * The length of the data key to create: datakey_length (bits) wins over key_spec; neither gives
 * a 256-bit key.
 */
function requestedDataKeyBytes(request: CreateDatakeyRequest): number {
  if (request.datakey_length !== undefined) {
    const bits = /^\d{1,5}$/.test(request.datakey_length) ? Number(request.datakey_length) : NaN;
    if (!(bits >= MIN_DATAKEY_BITS && bits <= MAX_DATAKEY_BITS)) throw new KmsError('KMS.1901');
    if (bits % 8 !== 0) throw new KmsError('KMS.1903');
    return bits / 8;
  }
  if (request.key_spec !== undefined) {
    const bytes = KEY_SPEC_BYTES.get(request.key_spec);
    if (bytes === undefined) throw new KmsError('KMS.1902');
    return bytes;
  }
  return DEFAULT_DATAKEY_BYTES;
}

/**
 * Data keys under customer master keys: the HSM makes them, seals them with AES-256-GCM under the
 * CMK, and opens them again; this service checks the rules and owns no key material.
 */
export class DataKeyService {
  constructor(private readonly deps: DataKeyServiceDeps) {}

  async createDataKey(ctx: RequestContext, request: CreateDatakeyRequest): Promise<CreateDatakeyResponse> {
    const { key, plaintext, blob } = await this.generate(ctx, request);
    try {
      return { key_id: key.keyId, plain_text: hex(plaintext), cipher_text: hex(blob) };
    } finally {
      plaintext.fill(0);
    }
  }

  async createDataKeyWithoutPlaintext(ctx: RequestContext, request: CreateDatakeyRequest): Promise<CreateDatakeyWithoutPlaintextResponse> {
    const { key, plaintext, blob } = await this.generate(ctx, request);
    plaintext.fill(0);
    return { key_id: key.keyId, cipher_text: hex(blob) };
  }

  /** plain_text is hex of the data key followed by its SHA-256; both are checked before sealing. */
  async encryptDataKey(ctx: RequestContext, request: EncryptDatakeyRequest): Promise<EncryptDatakeyResponse> {
    const key = await this.deps.keys.usableKey(ctx, request.key_id);
    const length = byteLength(request.datakey_plain_length, 'datakey_plain_length');
    const aad = this.aad(ctx, key, key.materialVersion, request);
    const input = fromHex(request.plain_text, 'KMS.2101');
    try {
      if (input.length !== length + DIGEST_BYTES) throw new KmsError('KMS.2104');
      const plaintext = input.subarray(0, length);
      if (!timingSafeEqual(sha256(plaintext), input.subarray(length))) throw new KmsError('KMS.2103');
      const blob = await this.seal(key, plaintext, aad);
      return { key_id: key.keyId, cipher_text: hex(blob), datakey_length: String(length) };
    } finally {
      input.fill(0);
    }
  }

  async decryptDataKey(ctx: RequestContext, request: DecryptDatakeyRequest): Promise<DecryptDatakeyResponse> {
    const key = await this.deps.keys.usableKey(ctx, request.key_id);
    const expectedLength = byteLength(request.datakey_cipher_length, 'datakey_cipher_length');
    const blob = decodeBlob(fromHex(request.cipher_text, 'KMS.2201'));
    if (blob.keyId !== key.keyId) throw new KmsError('KMS.2201', { detail: 'The ciphertext belongs to another key.' });
    // Material versions are added one at a time from 0 and never removed while the key exists.
    if (blob.materialVersion > key.materialVersion) throw new KmsError('KMS.2201');
    if (dataKeyLength(blob) !== expectedLength) throw new KmsError('KMS.2204');
    const aad = this.aad(ctx, key, blob.materialVersion, request);
    const plaintext = await this.deps.hsm.symmetric.decrypt({ keyId: key.keyId, version: blob.materialVersion }, blob, aad);
    try {
      return { data_key: hex(plaintext), datakey_length: String(plaintext.length), datakey_dgst: hex(sha256(plaintext)) };
    } finally {
      plaintext.fill(0);
    }
  }

  private async generate(ctx: RequestContext, request: CreateDatakeyRequest): Promise<{ key: KeyRecord; plaintext: Buffer; blob: Buffer }> {
    const key = await this.deps.keys.usableKey(ctx, request.key_id);
    const length = requestedDataKeyBytes(request);
    const aad = this.aad(ctx, key, key.materialVersion, request);
    const plaintext = await this.deps.hsm.random(length);
    try {
      return { key, plaintext, blob: await this.seal(key, plaintext, aad) };
    } catch (error) {
      plaintext.fill(0);
      throw error;
    }
  }

  /** Not async: a data key's path to the HSM takes no more promise hops than its calls need. */
  private seal(key: KeyRecord, plaintext: Buffer, aad: Buffer): Promise<Buffer> {
    const ref = { keyId: key.keyId, version: key.materialVersion };
    // Counted before the call: an encryption whose answer is lost may still have used an IV.
    this.deps.usage.count(ref);
    return this.deps.hsm.symmetric.encrypt(ref, plaintext, aad).then((sealed) => encodeBlob({ keyId: key.keyId, materialVersion: key.materialVersion, ...sealed }));
  }

  private aad(ctx: RequestContext, key: KeyRecord, materialVersion: number, fields: BindingFields): Buffer {
    return encodeBinding({
      purpose: 'datakey',
      keyId: key.keyId,
      materialVersion,
      projectId: ctx.projectId,
      context: canonicalContext(fields.encryption_context),
      aad: checkedAad(fields.additional_authenticated_data),
    });
  }
}
