import * as graphene from 'graphene-pk11';
import type { MaterialRef } from './hsm';

/**
 * How the service names its objects in the token, the attribute templates that find them, and the
 * one builder of every key object's template (as graphene templates). What each key kind's objects
 * may do is decided by the uses its file in key-kinds/ passes to {@link keyObjectTemplate}, and
 * nowhere else.
 */

const LABEL_PREFIX = 'kms/';

/** The object classes of key material: a secret key (AES, HMAC), or a private key and its public key. */
export type KeyObjectClass = 'secret' | 'private' | 'public';

/** Each class's CKA_CLASS. */
export const CKA_CLASS_OF: Readonly<Record<KeyObjectClass, graphene.ObjectClass>> = {
  secret: graphene.ObjectClass.SECRET_KEY,
  private: graphene.ObjectClass.PRIVATE_KEY,
  public: graphene.ObjectClass.PUBLIC_KEY,
};

/** Every class of key material, in the order the token is read at start-up. */
export const KEY_OBJECT_CLASSES: readonly KeyObjectClass[] = ['secret', 'private', 'public'];

/** CKA_ID: the key's 16 UUID bytes followed by the material version as a 32-bit big-endian number (shared by a key pair's two objects). */
export function objectId(ref: MaterialRef): Buffer {
  const id = Buffer.alloc(20);
  Buffer.from(ref.keyId.replace(/-/g, ''), 'hex').copy(id, 0);
  id.writeUInt32BE(ref.version, 16);
  return id;
}

/** CKA_LABEL: readable in vendor tools, e.g. `kms/0d0466b0-e727-4d9c-b35d-f84bb474a37f/v0` (a key pair's two objects carry the same). */
export function objectLabel(ref: MaterialRef): string {
  return `${LABEL_PREFIX}${ref.keyId}/v${ref.version}`;
}

/** The reference a label stands for, or undefined for objects that are not ours. */
export function parseObjectLabel(label: string): MaterialRef | undefined {
  const match = /^kms\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/v(\d{1,10})$/.exec(label);
  if (!match) return undefined;
  return { keyId: match[1]!, version: Number(match[2]) };
}

/** Finds every token object of one key's material (of any class) by its CKA_ID. */
export function findMaterialTemplate(ref: MaterialRef): graphene.ITemplate {
  return { token: true, id: objectId(ref) };
}

/** Finds one object of one key's material: its CKA_ID and class (a key pair's private and public key share the id). */
export function findMaterialObjectTemplate(ref: MaterialRef, objectClass: KeyObjectClass): graphene.ITemplate {
  return { class: CKA_CLASS_OF[objectClass], token: true, id: objectId(ref) };
}

/**
 * Finds every persistent key object of one class, to enumerate the token at start-up (once per
 * class of {@link KEY_OBJECT_CLASSES}). By class, not every object: a module need not be able to
 * read the attributes of an object that is none of ours, and SoftHSM cannot read one whose file a
 * killed process left half-written.
 */
export function allKeysTemplate(objectClass: KeyObjectClass): graphene.ITemplate {
  return { class: CKA_CLASS_OF[objectClass], token: true };
}

/** What a key object may be used for: each is its CKA_ flag, set true when named and false otherwise. */
export type KeyUse = 'encrypt' | 'decrypt' | 'sign' | 'verify' | 'derive' | 'wrap' | 'unwrap';

/** Every use flag (a secret key's template sets them all). */
export const KEY_USES: readonly KeyUse[] = ['encrypt', 'decrypt', 'wrap', 'unwrap', 'sign', 'verify', 'derive'];

/**
 * The use flags each class has (PKCS#11 §4.8-4.10: a public key cannot decrypt, sign or unwrap, a
 * private key cannot encrypt, verify or wrap; SoftHSM answers CKR_ATTRIBUTE_TYPE_INVALID to a
 * template that names the other half's).
 */
const USES_OF: Readonly<Record<KeyObjectClass, readonly KeyUse[]>> = {
  secret: KEY_USES,
  private: ['decrypt', 'unwrap', 'sign', 'derive'],
  public: ['encrypt', 'wrap', 'verify', 'derive'],
};

export interface KeyObjectSpec {
  readonly objectClass: KeyObjectClass;
  readonly keyType: graphene.KeyType;
  /** The uses this object is allowed; every other use flag of its class is set false explicitly (a module's default is not relied on). */
  readonly uses: readonly KeyUse[];
  /** The kind's own attributes: CKA_VALUE_LEN, CKA_MODULUS_BITS and CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS. */
  readonly attributes?: Pick<graphene.ITemplate, 'valueLen' | 'modulusBits' | 'publicExponent' | 'paramsEC'>;
}

/**
 * The one template builder of the service's persistent key objects. Secret and private keys are
 * private, sensitive, never extractable and unmodifiable, so that their value cannot leave the HSM
 * by any route and their uses cannot be widened later; public keys are public (readable, which is
 * their purpose) and unmodifiable. Every object of `ref` carries its CKA_ID and CKA_LABEL.
 */
export function keyObjectTemplate(ref: MaterialRef, spec: KeyObjectSpec): graphene.ITemplate {
  const secret = spec.objectClass !== 'public';
  const template: graphene.ITemplate = {
    class: CKA_CLASS_OF[spec.objectClass],
    keyType: spec.keyType,
    ...spec.attributes,
    token: true,
    private: secret,
    ...(secret ? { sensitive: true, extractable: false } : {}),
    modifiable: false,
  };
  const allowed = USES_OF[spec.objectClass];
  const foreign = spec.uses.filter((use) => !allowed.includes(use));
  if (foreign.length > 0) throw new Error(`a ${spec.objectClass} key cannot be allowed to ${foreign.join(', ')}`);
  for (const use of allowed) template[use] = spec.uses.includes(use);
  template.id = objectId(ref);
  template.label = objectLabel(ref);
  return template;
}
