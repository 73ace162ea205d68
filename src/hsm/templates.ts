import * as pkcs11 from 'pkcs11js';
import type { MaterialRef } from './hsm';

/**
 * Every PKCS#11 attribute template the service uses, in one place, so that what a key may do is
 * decided here and nowhere else.
 */

const LABEL_PREFIX = 'kms/';

/** CKA_ID: the key's 16 UUID bytes followed by the material version as a 32-bit big-endian number. */
export function objectId(ref: MaterialRef): Buffer {
  const id = Buffer.alloc(20);
  Buffer.from(ref.keyId.replace(/-/g, ''), 'hex').copy(id, 0);
  id.writeUInt32BE(ref.version, 16);
  return id;
}

/** CKA_LABEL: readable in vendor tools, e.g. `kms/0d0466b0-e727-4d9c-b35d-f84bb474a37f/v0`. */
export function objectLabel(ref: MaterialRef): string {
  return `${LABEL_PREFIX}${ref.keyId}/v${ref.version}`;
}

/** The reference a label stands for, or undefined for objects that are not ours. */
export function parseObjectLabel(label: string): MaterialRef | undefined {
  const match = /^kms\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/v(\d{1,10})$/.exec(label);
  if (!match) return undefined;
  return { keyId: match[1]!, version: Number(match[2]) };
}

/**
 * A customer master key: AES-256 generated in the token, a persistent private object that is
 * sensitive and never extractable, allowed to encrypt and decrypt only (no wrap, unwrap, sign,
 * derive), so that its value cannot leave the HSM by any route.
 */
export function masterKeyTemplate(ref: MaterialRef): pkcs11.Template {
  return [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
    { type: pkcs11.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_PRIVATE, value: true },
    { type: pkcs11.CKA_SENSITIVE, value: true },
    { type: pkcs11.CKA_EXTRACTABLE, value: false },
    { type: pkcs11.CKA_MODIFIABLE, value: false },
    { type: pkcs11.CKA_ENCRYPT, value: true },
    { type: pkcs11.CKA_DECRYPT, value: true },
    { type: pkcs11.CKA_WRAP, value: false },
    { type: pkcs11.CKA_UNWRAP, value: false },
    { type: pkcs11.CKA_SIGN, value: false },
    { type: pkcs11.CKA_VERIFY, value: false },
    { type: pkcs11.CKA_DERIVE, value: false },
    { type: pkcs11.CKA_ID, value: objectId(ref) },
    { type: pkcs11.CKA_LABEL, value: objectLabel(ref) },
  ];
}

/** Finds one key's material by its CKA_ID. */
export function findMaterialTemplate(ref: MaterialRef): pkcs11.Template {
  return [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_ID, value: objectId(ref) },
  ];
}

/** Finds every persistent secret key, to enumerate the token once at start-up. */
export const ALL_SECRET_KEYS_TEMPLATE: pkcs11.Template = [
  { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
  { type: pkcs11.CKA_TOKEN, value: true },
];

/** AES-GCM with a 96-bit IV and a 128-bit tag (the PKCS#11 v2.40 CK_GCM_PARAMS layout). */
export function gcmMechanism(iv: Buffer, aad: Buffer): pkcs11.Mechanism {
  const parameter: pkcs11.AesGCM = { type: pkcs11.CK_PARAMS_AES_GCM_v240, iv, aad, ivBits: 96, tagBits: 128 };
  return { mechanism: pkcs11.CKM_AES_GCM, parameter };
}

export const AES_KEY_GEN: pkcs11.Mechanism = { mechanism: pkcs11.CKM_AES_KEY_GEN };
