import { KmsError } from '../errors';

/**
 * What a ciphertext holds: a data key (create-, encrypt-datakey), a caller's data (encrypt-data)
 * or the private key of a data key pair (create-rsa-, create-ec-datakey-pair). Bound into the
 * additional data, so that a blob of one kind never opens as another, whatever its frame says:
 * decrypt-data cannot be made to hand out a data key, nor decrypt-datakey small data, and no blob
 * a caller could have made with encrypt-data passes for a private key this service made.
 */
export type BlobPurpose = 'datakey' | 'data' | 'privateKey';

/**
 * What a ciphertext is bound to. The GCM additional data carries all of it, so a blob opens only
 * as the same kind of blob, under the same key, material version and project, with the same
 * encryption_context and additional_authenticated_data the caller gave at encryption.
 */
export interface Binding {
  readonly purpose: BlobPurpose;
  readonly keyId: string;
  readonly materialVersion: number;
  readonly projectId: string;
  /** Canonical JSON of encryption_context, or '' when none was given. */
  readonly context: string;
  /** additional_authenticated_data as UTF-8, or '' when none was given. */
  readonly aad: string;
}

export const MAX_CONTEXT_CHARS = 8192;
/** A UTF-16 surrogate without its partner: it has no UTF-8 form, so two such strings could bind alike. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
export const MAX_AAD_BYTES = 128;
/** The first field of the additional data, per purpose (the data key's is the one it always had). */
const DOMAINS: Readonly<Record<BlobPurpose, string>> = {
  datakey: 'huawei-kms-compatible/datakey/v1',
  data: 'huawei-kms-compatible/data/v1',
  privateKey: 'huawei-kms-compatible/private-key/v1',
};

/**
 * The canonical form of an encryption_context: string keys and string values, keys sorted by code
 * point, compact JSON. An empty object is the same as none. Anything else is KMS.0208.
 */
export function canonicalContext(context: unknown): string {
  if (context === undefined || context === null) return '';
  if (typeof context !== 'object' || Array.isArray(context)) {
    throw new KmsError('KMS.0208', { detail: 'encryption_context must be an object of string values.' });
  }
  const entries = Object.entries(context as Record<string, unknown>);
  if (entries.length === 0) return '';
  for (const [key, value] of entries) {
    if (typeof value !== 'string') {
      throw new KmsError('KMS.0208', { detail: 'encryption_context values must be strings.' });
    }
    if (LONE_SURROGATE.test(key) || LONE_SURROGATE.test(value)) {
      throw new KmsError('KMS.0208', { detail: 'encryption_context must be well-formed Unicode.' });
    }
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonical = JSON.stringify(Object.fromEntries(entries));
  if (canonical.length > MAX_CONTEXT_CHARS) {
    throw new KmsError('KMS.0208', { detail: `encryption_context must be at most ${MAX_CONTEXT_CHARS} characters.` });
  }
  return canonical;
}

/** Checks additional_authenticated_data (at most 128 bytes of UTF-8); absent is ''. */
export function checkedAad(aad: string | undefined): string {
  if (aad === undefined) return '';
  if (LONE_SURROGATE.test(aad)) throw new KmsError('KMS.0308', { detail: 'additional_authenticated_data must be well-formed Unicode.' });
  if (Buffer.byteLength(aad, 'utf8') > MAX_AAD_BYTES) {
    throw new KmsError('KMS.0308', { detail: `additional_authenticated_data must be at most ${MAX_AAD_BYTES} bytes.` });
  }
  return aad;
}

/** The GCM additional data: every field length-prefixed (u32 big-endian), so no two bindings encode alike. */
export function encodeBinding(binding: Binding): Buffer {
  const parts = [DOMAINS[binding.purpose], binding.keyId, String(binding.materialVersion), binding.projectId, binding.context, binding.aad];
  let total = 0;
  for (const part of parts) total += 4 + Buffer.byteLength(part, 'utf8');
  // One buffer written in place: this runs on every encryption and decryption.
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const part of parts) {
    const written = out.write(part, at + 4, 'utf8');
    out.writeUInt32BE(written, at);
    at += 4 + written;
  }
  return out;
}
