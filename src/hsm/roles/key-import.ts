import { constants, createHash, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import { KmsError } from '../../errors';
import { ckrOf } from '../ckr';
import { WRAPPING_KEY_VERSION, type KeyImport, type KeySpec, type MaterialRef, type PrivateKeyImport, type WrappingAlgorithm } from '../hsm';
import { KEY_KINDS } from '../key-kinds';
import { aes256Template } from '../key-kinds/aes-256';
import { destroyQuietly, generateKeyPair } from '../key-kinds/generate';
import { readAttributes, rsaPublicKeyInfo } from '../key-kinds/public-key-info';
import type { KeyObjects } from '../key-objects';
import type { Pkcs11Profile } from '../profiles';
import { KEY_USES, keyObjectTemplate } from '../templates';
import { OAEP } from './asymmetric-decryption';
import { callback } from './calls';
import { checkPrivateKeyTemplate, InconsistentPrivateKey, isImportableFamily, publicHalfOf, TEMPORARY_KEY_BYTES, wrapWithPadding, type ImportableFamily, type PublicHalf } from './private-key-import';

/**
 * The wrapping key's size: the SDK's `encrypted_key_material` is 344 to 360 base64 characters, so
 * the wrapped material is 256 bytes, one RSA-2048 block (RSA-3072's 384 bytes would not fit).
 */
export const WRAPPING_KEY_BITS = 2048;
/** What one RSA-2048 block of wrapped material is. */
export const WRAPPED_BYTES = WRAPPING_KEY_BITS / 8;
/** AES-256 material. */
const MATERIAL_BYTES = 32;
const F4 = Buffer.from([0x01, 0x00, 0x01]);
/** What the fingerprint encrypts (AES-ECB, one block): the classic key check value. */
const ZERO_BLOCK = Buffer.alloc(16);

/** The reference of `keyId`'s wrapping key pair: the key's id, and a version no material has. */
export function wrappingRef(keyId: string): MaterialRef {
  return { keyId, version: WRAPPING_KEY_VERSION };
}

/**
 * What C_UnwrapKey answers for wrapped material that does not unwrap (another hash, another key,
 * a block that is no OAEP encoding, a key the template cannot take): the caller's, from that call
 * only, with the profile's bad-ciphertext codes (SoftHSM answers CKR_GENERAL_ERROR). NSS 3.87
 * answers CKR_ARGUMENTS_BAD to a block whose number is not below the modulus (as material wrapped
 * for another wrapping key is now and then): the mechanism's parameters were probed at start-up,
 * so the argument it means is the wrapped bytes.
 */
const NOT_UNWRAPPED: readonly number[] = [
  pkcs11.CKR_ARGUMENTS_BAD,
  pkcs11.CKR_WRAPPED_KEY_INVALID,
  pkcs11.CKR_WRAPPED_KEY_LEN_RANGE,
  pkcs11.CKR_ENCRYPTED_DATA_INVALID,
  pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE,
  pkcs11.CKR_KEY_SIZE_RANGE,
  pkcs11.CKR_TEMPLATE_INCONSISTENT,
  pkcs11.CKR_ATTRIBUTE_VALUE_INVALID,
];

/** A session secret key the material is unwrapped into first, to be checked (its length, its fingerprint) before anything is written to the token. */
function checkTemplate(keyType: graphene.KeyType): pkcs11.Template {
  return graphene.Template.toPkcs11({
    class: graphene.ObjectClass.SECRET_KEY,
    keyType,
    token: false,
    private: true,
    sensitive: true,
    // Extractable only by wrapping under a session key of the role's, to measure its length (materialLength).
    extractable: true,
    encrypt: keyType === graphene.KeyType.AES,
    decrypt: false,
    wrap: false,
    unwrap: false,
    sign: false,
    verify: false,
    derive: false,
  });
}

/**
 * The session AES key a temporary key is unwrapped into: allowed to unwrap (the private key), and
 * to encrypt and be extractable only as checkTemplate's is, to be measured (its length checked as
 * the material's is: materialLength, fingerprintOf). Destroyed as soon as the import is done.
 */
function temporaryKeyTemplate(): pkcs11.Template {
  return graphene.Template.toPkcs11({
    class: graphene.ObjectClass.SECRET_KEY,
    keyType: graphene.KeyType.AES,
    token: false,
    private: true,
    sensitive: true,
    extractable: true,
    encrypt: true,
    decrypt: false,
    wrap: false,
    unwrap: true,
    sign: false,
    verify: false,
    derive: false,
  });
}

/**
 * Makes a token object with `make` and the service's template for it; on a module that refuses
 * CKA_MODIFIABLE false there (SoftHSM 2.6, see unwrapIntoToken), without it. The same material
 * was checked on a session object a moment ago: a refusal now is the module's, not the caller's
 * (KMS.0103). The object's uses are then held to the template's (keepUses).
 */
async function intoToken(session: graphene.Session, make: (template: pkcs11.Template) => Promise<Buffer>, template: graphene.ITemplate): Promise<Buffer> {
  let handle: Buffer;
  try {
    handle = await withoutModifiableIfRefused(template, (attempt) => make(graphene.Template.toPkcs11(attempt)));
  } catch (error) {
    if (error instanceof KmsError && error.code === 'KMS.0308') throw new KmsError('KMS.0103', { cause: error.cause });
    throw error;
  }
  return keepUses(session, handle, template);
}

/** `make` with `template`, and once more without CKA_MODIFIABLE false when the module refuses that attribute (CKR_ATTRIBUTE_READ_ONLY). */
async function withoutModifiableIfRefused<T>(template: graphene.ITemplate, make: (template: graphene.ITemplate) => Promise<T>): Promise<T> {
  try {
    return await make(template);
  } catch (error) {
    if (ckrOf(error) !== pkcs11.CKR_ATTRIBUTE_READ_ONLY) throw error;
    const { modifiable: _modifiable, ...modifiable } = template;
    return await make(modifiable);
  }
}

/**
 * The token object `handle` with exactly the uses `template` sets. NSS's softoken ignores an
 * unwrap template's use flags for a private key (it allows decrypt and unwrap to a key made to
 * sign): such an object is copied with the template's uses (C_CopyObject takes them, and
 * CKA_MODIFIABLE false) and destroyed; a copy that still has others is destroyed too (KMS.0103),
 * so that no key in the token can do more than its usage.
 */
async function keepUses(session: graphene.Session, handle: Buffer, template: graphene.ITemplate): Promise<Buffer> {
  // The template's use flags as graphene writes them (type and value), read back to compare.
  const fixed = graphene.Template.toPkcs11(Object.fromEntries(KEY_USES.filter((use) => typeof template[use] === 'boolean').map((use) => [use, template[use]])));
  const wrong = (object: Buffer): boolean =>
    readAttributes(
      session,
      object,
      fixed.map((attribute) => attribute.type),
    ).some((value, index) => (value[0] === 1) !== fixed[index]!.value);
  const { lib } = session;
  // Whatever fails from here, no object made here is left in the token.
  const destroy = (object: Buffer): void => new graphene.SessionObject(object, session, lib).destroy();
  const destroyingOnFailure = <T>(object: Buffer, work: () => T): T => {
    try {
      return work();
    } catch (error) {
      destroyQuietly(new graphene.SessionObject(object, session, lib));
      throw error;
    }
  };
  if (!destroyingOnFailure(handle, () => wrong(handle))) return handle;
  // Through a session copy: NSS gives a token copy of a token key the original's handle, so that
  // destroying the original would destroy the copy. The original must go (an object with more uses
  // than its key's must not stay beside the copy under its CKA_ID): a failure to destroy it fails
  // the import.
  const held = destroyingOnFailure(handle, () => lib.C_CopyObject(session.handle, handle, graphene.Template.toPkcs11({ token: false })));
  let copy: Buffer;
  try {
    destroy(handle);
    copy = await withoutModifiableIfRefused({ token: true, modifiable: false }, async (extra) => lib.C_CopyObject(session.handle, held, [...fixed, ...graphene.Template.toPkcs11(extra)]));
  } finally {
    destroyQuietly(new graphene.SessionObject(held, session, lib));
  }
  if (destroyingOnFailure(copy, () => wrong(copy))) {
    destroyQuietly(new graphene.SessionObject(copy, session, lib));
    throw new KmsError('KMS.0103', { cause: new Error('the module keeps uses on an imported key that its template does not allow') });
  }
  return copy;
}

/** How a module imports private keys: its RFC 5649 mechanism, and the specs it can import. */
export interface PrivateKeyImporting {
  readonly mechanism: number;
  readonly specs: ReadonlySet<KeySpec>;
}

/**
 * The {@link KeyImport} role: RSA-2048 wrapping key pairs made in the token (the private key
 * private, sensitive, never extractable, allowed to unwrap and nothing else), and C_UnwrapKey with
 * CKM_RSA_PKCS_OAEP straight into the key's AES-256 token object, whose template is generated
 * material's (aes-256.ts), so that the symmetric role uses it unchanged.
 */
export class Pkcs11KeyImport implements KeyImport {
  readonly privateKeySpecs: ReadonlySet<KeySpec>;

  /** `privateKeys`: the RFC 5649 mechanism the module unwraps private keys with, and the specs it can import (probePrivateKeyImport); none when it cannot. */
  constructor(
    private readonly keys: KeyObjects,
    private readonly profile: Pkcs11Profile,
    readonly wrappingAlgorithms: ReadonlySet<WrappingAlgorithm>,
    private readonly privateKeys?: PrivateKeyImporting,
  ) {
    this.privateKeySpecs = privateKeys?.specs ?? new Set();
  }

  createWrappingKey(keyId: string): Promise<Buffer> {
    const ref = wrappingRef(keyId);
    return this.keys.replace(ref, 'create wrapping key', async (session) => {
      const objects = await generateKeyPair(
        session,
        pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN,
        keyObjectTemplate(ref, { objectClass: 'public', keyType: graphene.KeyType.RSA, uses: [], attributes: { modulusBits: WRAPPING_KEY_BITS, publicExponent: F4 } }),
        keyObjectTemplate(ref, { objectClass: 'private', keyType: graphene.KeyType.RSA, uses: ['unwrap'] }),
      );
      const publicKey = objects.find((object) => object.objectClass === 'public');
      if (!publicKey) throw new Error('the module made no public key');
      return { objects, value: rsaPublicKeyInfo(session, publicKey.handle) };
    });
  }

  wrappingPublicKey(keyId: string): Promise<Buffer> {
    return this.keys.withObject(wrappingRef(keyId), 'public', 'read public key', (session, key) => rsaPublicKeyInfo(session, key));
  }

  destroyWrappingKey(keyId: string): Promise<boolean> {
    return this.keys.destroy(wrappingRef(keyId));
  }

  unwrapKey(ref: MaterialRef, spec: KeySpec, keyId: string, algorithm: WrappingAlgorithm, wrapped: Buffer, expectedFingerprint?: Buffer): Promise<Buffer> {
    if (spec !== 'AES_256') return Promise.reject(new KmsError('KMS.0308', { detail: `${spec} material cannot be imported here; only AES_256.` }));
    if (!this.wrappingAlgorithms.has(algorithm)) return Promise.reject(new KmsError('KMS.0308', { detail: `${algorithm} is not supported by this HSM.` }));
    const mechanism: pkcs11.Mechanism = { mechanism: pkcs11.CKM_RSA_PKCS_OAEP, parameter: OAEP[algorithm] };
    return this.keys.replace(
      ref,
      'unwrap key',
      async (session) => {
        const unwrapping = this.keys.lookup(session, wrappingRef(keyId), 'private');
        if (!unwrapping) throw new KmsError('KMS.0207', { cause: new Error(`no wrapping key for ${keyId} in the token`) });
        const { key: checked, fingerprint } = await this.unwrapForCheck(session, mechanism, unwrapping, wrapped);
        try {
          if (expectedFingerprint && !(expectedFingerprint.length === fingerprint.length && timingSafeEqual(expectedFingerprint, fingerprint))) {
            throw new KmsError('KMS.2606');
          }
          const handle = await this.unwrapIntoToken(session, mechanism, unwrapping, wrapped, ref);
          return { objects: [{ objectClass: 'secret' as const, handle }], value: fingerprint };
        } finally {
          destroyQuietly(new graphene.SessionObject(checked, session, session.lib));
        }
      },
    );
  }

  unwrapPrivateKey({ ref, spec, usage, keyId, algorithm, wrappedKey, wrappedPrivateKey, expectedFingerprint }: PrivateKeyImport): Promise<Buffer> {
    const kind = KEY_KINDS.get(spec);
    const uses = kind?.objectUses?.(usage);
    const padWrap = this.privateKeys?.mechanism;
    if (!kind || !uses || !isImportableFamily(kind.family) || padWrap === undefined || !this.privateKeySpecs.has(spec)) {
      return Promise.reject(new KmsError('KMS.0308', { detail: `${spec} private keys cannot be imported into this HSM.` }));
    }
    if (!this.wrappingAlgorithms.has(algorithm)) return Promise.reject(new KmsError('KMS.0308', { detail: `${algorithm} is not supported by this HSM.` }));
    const family = kind.family;
    const oaep: pkcs11.Mechanism = { mechanism: pkcs11.CKM_RSA_PKCS_OAEP, parameter: OAEP[algorithm] };
    const keyType = family.name === 'RSA' ? graphene.KeyType.RSA : graphene.KeyType.EC;
    return this.keys.replace(ref, 'unwrap key', async (session) => {
      const unwrapping = this.keys.lookup(session, wrappingRef(keyId), 'private');
      if (!unwrapping) throw new KmsError('KMS.0207', { cause: new Error(`no wrapping key for ${keyId} in the token`) });
      const temporary = await this.unwrapTemporaryKey(session, oaep, unwrapping, wrappedKey);
      try {
        const mechanism: pkcs11.Mechanism = { mechanism: padWrap };
        const half = await this.checkPrivateKey(session, mechanism, temporary, wrappedPrivateKey, family);
        const fingerprint = createHash('sha256').update(half.spki).digest();
        if (expectedFingerprint && !(expectedFingerprint.length === fingerprint.length && timingSafeEqual(expectedFingerprint, fingerprint))) {
          throw new KmsError('KMS.2606');
        }
        const privateKey = await intoToken(session, (template) => this.unwrap(session, mechanism, temporary, wrappedPrivateKey, template), keyObjectTemplate(ref, { objectClass: 'private', keyType, uses: uses.private }));
        try {
          const publicKey = await intoToken(session, async (template) => session.lib.C_CreateObject(session.handle, template), {
            ...keyObjectTemplate(ref, { objectClass: 'public', keyType, uses: uses.public }),
            ...half.attributes,
          });
          return {
            objects: [
              { objectClass: 'private' as const, handle: privateKey },
              { objectClass: 'public' as const, handle: publicKey },
            ],
            value: fingerprint,
          };
        } catch (error) {
          destroyQuietly(new graphene.SessionObject(privateKey, session, session.lib));
          throw error;
        }
      } finally {
        destroyQuietly(new graphene.SessionObject(temporary, session, session.lib));
      }
    });
  }

  /**
   * The temporary key as a session AES key allowed to unwrap: 16 or 32 bytes (KMS.2610 otherwise,
   * told as the material's length is: unwrapAes, materialLength); KMS.0308 when it does not unwrap.
   */
  private async unwrapTemporaryKey(session: graphene.Session, mechanism: pkcs11.Mechanism, unwrapping: Buffer, wrapped: Buffer): Promise<Buffer> {
    const key = await this.unwrapAes(session, mechanism, unwrapping, wrapped, temporaryKeyTemplate(), 'KMS.2610');
    try {
      // The length to 8 bytes (materialLength), and AES-ECB's say on the rest (16, 24 or 32 bytes).
      if (!TEMPORARY_KEY_BYTES.includes(materialLength(session, key)) || fingerprintOf(session, key) === undefined) throw new KmsError('KMS.2610');
      return key;
    } catch (error) {
      destroyQuietly(new graphene.SessionObject(key, session, session.lib));
      throw error;
    }
  }

  /** The private key unwrapped into a session object, checked to be of `family`, and its public half; KMS.2609 when it is not, or does not unwrap. */
  private async checkPrivateKey(session: graphene.Session, mechanism: pkcs11.Mechanism, temporary: Buffer, wrapped: Buffer, family: ImportableFamily): Promise<PublicHalf> {
    let check: Buffer;
    try {
      check = await this.unwrap(session, mechanism, temporary, wrapped, checkPrivateKeyTemplate(family));
    } catch (error) {
      if (error instanceof KmsError && error.code === 'KMS.0308') throw new KmsError('KMS.2609', { cause: error.cause });
      const code = ckrOf(error);
      if (code !== undefined && NOT_A_PRIVATE_KEY.has(code)) throw new KmsError('KMS.2609', { cause: error });
      throw error;
    }
    try {
      let half: PublicHalf | undefined;
      try {
        half = publicHalfOf(session, check, family);
      } catch (error) {
        // The module took the key, then cannot use it as one (SoftHSM: an EC scalar of 0 or n fails ECDH with CKR_GENERAL_ERROR).
        const code = ckrOf(error);
        if (error instanceof InconsistentPrivateKey || (code !== undefined && UNUSABLE_PRIVATE_KEY.has(code))) {
          throw new KmsError('KMS.2609', { detail: 'encrypted_privatekey is not a usable private key.', cause: error });
        }
        throw error;
      }
      if (!half) throw new KmsError('KMS.2609', { detail: `encrypted_privatekey is not a key of this key's spec.` });
      return half;
    } finally {
      destroyQuietly(new graphene.SessionObject(check, session, session.lib));
    }
  }

  /** The material as a session AES key, of 32 bytes (KMS.2604 otherwise: unwrapAes), and its fingerprint. */
  private async unwrapForCheck(session: graphene.Session, mechanism: pkcs11.Mechanism, unwrapping: Buffer, wrapped: Buffer): Promise<{ key: Buffer; fingerprint: Buffer }> {
    const key = await this.unwrapAes(session, mechanism, unwrapping, wrapped, checkTemplate(graphene.KeyType.AES), 'KMS.2604');
    try {
      const length = materialLength(session, key);
      // AES-ECB takes 16, 24 and 32-byte keys only: another length fails here (SoftHSM: CKR_MECHANISM_INVALID).
      const fingerprint = length === MATERIAL_BYTES ? fingerprintOf(session, key) : undefined;
      if (!fingerprint) throw new KmsError('KMS.2604');
      return { key, fingerprint };
    } catch (error) {
      destroyQuietly(new graphene.SessionObject(key, session, session.lib));
      throw error;
    }
  }

  /**
   * The token object: generated material's template (aes-256.ts), less CKA_VALUE_LEN (the value's
   * length is the material's; SoftHSM refuses the attribute in an unwrap template). SoftHSM 2.6
   * also refuses CKA_MODIFIABLE false there (CKR_ATTRIBUTE_READ_ONLY, and in C_CopyObject too): on
   * such a module the object is made without it, so it stays modifiable (the service never
   * modifies an object; its uses are set false explicitly all the same, and held to: intoToken).
   */
  private unwrapIntoToken(session: graphene.Session, mechanism: pkcs11.Mechanism, unwrapping: Buffer, wrapped: Buffer, ref: MaterialRef): Promise<Buffer> {
    const { valueLen: _length, ...template } = aes256Template(ref);
    return intoToken(session, (attempt) => this.unwrap(session, mechanism, unwrapping, wrapped, attempt), template);
  }

  /**
   * A session AES key of `template`. What does not unwrap as an AES key is unwrapped once more as a
   * generic secret, which takes any length: when that works, its length was wrong (`lengthError`);
   * when it does not, it does not unwrap at all (KMS.0308).
   */
  private async unwrapAes(session: graphene.Session, mechanism: pkcs11.Mechanism, unwrapping: Buffer, wrapped: Buffer, template: pkcs11.Template, lengthError: 'KMS.2604' | 'KMS.2610'): Promise<Buffer> {
    try {
      return await this.unwrap(session, mechanism, unwrapping, wrapped, template);
    } catch (error) {
      if (!(error instanceof KmsError && error.code === 'KMS.0308')) throw error;
      const secret = await this.unwrap(session, mechanism, unwrapping, wrapped, checkTemplate(graphene.KeyType.GENERIC_SECRET));
      destroyQuietly(new graphene.SessionObject(secret, session, session.lib));
      throw new KmsError(lengthError);
    }
  }

  /** C_UnwrapKey; what means "does not unwrap" is the caller's KMS.0308. */
  private async unwrap(session: graphene.Session, mechanism: pkcs11.Mechanism, unwrapping: Buffer, wrapped: Buffer, template: pkcs11.Template): Promise<Buffer> {
    const { lib, handle } = session;
    try {
      return this.profile.cryptoCalls === 'sync'
        ? lib.C_UnwrapKey(handle, mechanism, unwrapping, wrapped, template)
        : await callback<Buffer>((done) => lib.C_UnwrapKey(handle, mechanism, unwrapping, wrapped, template, done));
    } catch (error) {
      const code = ckrOf(error);
      if (code !== undefined && (NOT_UNWRAPPED.includes(code) || this.profile.badTagCodes.has(code))) {
        throw new KmsError('KMS.0308', { detail: 'encrypted_key_material does not unwrap under the import token\'s wrapping key with its wrapping algorithm.', cause: error });
      }
      throw error;
    }
  }
}

/** AES-ECB of a zero block under the key, in the token: equal for equal material, and telling nothing of it. Undefined when the key is no AES key's length. */
function fingerprintOf(session: graphene.Session, key: Buffer): Buffer | undefined {
  const { lib, handle } = session;
  try {
    lib.C_EncryptInit(handle, { mechanism: pkcs11.CKM_AES_ECB }, key);
  } catch (error) {
    const code = ckrOf(error);
    if (code === pkcs11.CKR_MECHANISM_INVALID || code === pkcs11.CKR_KEY_SIZE_RANGE || code === pkcs11.CKR_KEY_TYPE_INCONSISTENT) return undefined;
    throw error;
  }
  return Buffer.from(lib.C_Encrypt(handle, ZERO_BLOCK, Buffer.alloc(ZERO_BLOCK.length)));
}

/**
 * The unwrapped material's length in bytes, never the material. NSS's softoken reports it as
 * CKA_VALUE_LEN (and makes an AES key of whatever length the material has, whatever the template
 * asks). SoftHSM 2.6 reports 0 for an unwrapped key (and refuses a CKA_VALUE_LEN in the template):
 * there, the key is wrapped with AES key wrap (RFC 3394, padded to 8 bytes by SoftHSM) under a
 * session key made for the purpose and destroyed at once, and the length of that ciphertext says
 * the length to 8 bytes (40 bytes: 25 to 32), which AES-ECB's (16, 24 or 32) completes. Only the
 * session check object is extractable, and only by wrapping under that session key.
 */
function materialLength(session: graphene.Session, key: Buffer): number {
  const reported = valueLength(readAttributes(session, key, [pkcs11.CKA_VALUE_LEN])[0]!);
  if (reported > 0) return reported;
  const { lib, handle } = session;
  const wrapping = lib.C_GenerateKey(
    handle,
    { mechanism: pkcs11.CKM_AES_KEY_GEN },
    graphene.Template.toPkcs11({ class: graphene.ObjectClass.SECRET_KEY, keyType: graphene.KeyType.AES, token: false, valueLen: 32, wrap: true, sensitive: true, extractable: false }),
  );
  try {
    let wrappedLength: number;
    try {
      wrappedLength = lib.C_WrapKey(handle, { mechanism: pkcs11.CKM_AES_KEY_WRAP }, wrapping, key, Buffer.alloc(128)).length;
    } catch (error) {
      // RFC 3394 wraps 16 bytes or more: SoftHSM refuses a shorter key so. No AES key is that short.
      if (TOO_SHORT_TO_WRAP.has(ckrOf(error) ?? -1)) return 0;
      throw error;
    }
    // 8 bytes of integrity check value, then the key padded to 8 bytes: 40 bytes hold 25 to 32.
    return wrappedLength === MATERIAL_BYTES + 8 ? MATERIAL_BYTES : wrappedLength - 8;
  } finally {
    destroyQuietly(new graphene.SessionObject(wrapping, session, session.lib));
  }
}

/**
 * Whether the module unwraps with `algorithm`, found by doing it (C_UnwrapKey may take OAEP hashes
 * C_Decrypt does not, and the reverse): a throwaway session RSA-1024 key pair, 32 bytes wrapped by
 * Node's crypto with its public key, unwrapped into a session AES key, destroyed. False when the
 * module refuses the parameters or the material does not come back; throws what is not an answer
 * about them.
 */
export function probeUnwrap(session: graphene.Session, algorithm: WrappingAlgorithm): boolean {
  return withProbeWrappingPair(session, (publicKey, unwrapping) => {
    const wrapped = wrapForProbe(publicKey, algorithm, randomBytes(MATERIAL_BYTES));
    let key: Buffer;
    try {
      key = session.lib.C_UnwrapKey(session.handle, { mechanism: pkcs11.CKM_RSA_PKCS_OAEP, parameter: OAEP[algorithm] }, unwrapping, wrapped, checkTemplate(graphene.KeyType.AES));
    } catch (error) {
      const code = ckrOf(error);
      if (code !== undefined && (REFUSED.has(code) || NOT_UNWRAPPED.includes(code))) return false;
      throw error;
    }
    destroyQuietly(new graphene.SessionObject(key, session, session.lib));
    return true;
  });
}

/** `value` wrapped by Node's crypto under a probe's public key as a caller wraps with `algorithm` (RSA-OAEP, MGF1 of the same hash, no label). */
function wrapForProbe(publicKey: KeyObject, algorithm: WrappingAlgorithm, value: Buffer): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: algorithm === 'RSAES_OAEP_SHA_256' ? 'sha256' : 'sha1' }, value);
}

/** Runs `probe` with a throwaway session RSA-1024 key pair allowed to unwrap: its public key, for Node's crypto, and its private key's handle; destroys the pair after. */
function withProbeWrappingPair<T>(session: graphene.Session, probe: (publicKey: KeyObject, unwrapping: Buffer) => T): T {
  const pair = session.generateKeyPair(
    graphene.KeyGenMechanism.RSA,
    { keyType: graphene.KeyType.RSA, token: false, modulusBits: 1024, publicExponent: F4, encrypt: true, verify: false, wrap: false },
    { keyType: graphene.KeyType.RSA, token: false, private: true, sensitive: true, extractable: false, unwrap: true, decrypt: false, sign: false },
  );
  try {
    const [modulus, exponent] = readAttributes(session, pair.publicKey.handle, [pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT]);
    const publicKey = createPublicKey({ key: { kty: 'RSA', n: modulus!.toString('base64url'), e: exponent!.toString('base64url') }, format: 'jwk' });
    return probe(publicKey, pair.privateKey.handle);
  } finally {
    destroyQuietly(pair.privateKey);
    destroyQuietly(pair.publicKey);
  }
}

/**
 * What C_UnwrapKey answers for wrapped bytes that unwrap under the temporary key (it unwrapped
 * fine a moment ago) but are no private key the template takes: SoftHSM 2.6 CKR_FUNCTION_FAILED
 * (no PKCS#8, or another key type), NSS's softoken CKR_TEMPLATE_INCOMPLETE. The template is ours,
 * and took a key of this family at start-up (probePrivateKeyImport): the caller's key is at fault.
 */
const NOT_A_PRIVATE_KEY: ReadonlySet<number> = new Set([
  pkcs11.CKR_FUNCTION_FAILED,
  pkcs11.CKR_TEMPLATE_INCOMPLETE,
  pkcs11.CKR_TEMPLATE_INCONSISTENT,
  pkcs11.CKR_KEY_TYPE_INCONSISTENT,
  pkcs11.CKR_DATA_INVALID,
  pkcs11.CKR_DATA_LEN_RANGE,
]);

/**
 * What using a just-unwrapped session private key answers when the key is no usable one (its
 * derivation or signature, whose mechanisms the start-up probe showed working): the caller's
 * key, KMS.2609.
 */
const UNUSABLE_PRIVATE_KEY: ReadonlySet<number> = new Set([
  ...NOT_A_PRIVATE_KEY,
  pkcs11.CKR_GENERAL_ERROR,
  pkcs11.CKR_ARGUMENTS_BAD,
  pkcs11.CKR_KEY_SIZE_RANGE,
  pkcs11.CKR_DOMAIN_PARAMS_INVALID,
]);

/** What modules answer to OAEP parameters they do not take (SoftHSM 2.6: CKR_ARGUMENTS_BAD to any hash but SHA-1). */
const REFUSED: ReadonlySet<number> = new Set([pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_MECHANISM_INVALID, pkcs11.CKR_GENERAL_ERROR]);

/**
 * What C_WrapKey with RFC 3394 answers for a key under 16 bytes: SoftHSM 2.6 CKR_KEY_SIZE_RANGE, and
 * CKR_KEY_NOT_WRAPPABLE for an empty one (the check object is extractable: nothing else it can mean).
 */
const TOO_SHORT_TO_WRAP: ReadonlySet<number> = new Set([pkcs11.CKR_KEY_SIZE_RANGE, pkcs11.CKR_WRAPPED_KEY_LEN_RANGE, pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_KEY_NOT_WRAPPABLE]);

/** A CK_ULONG attribute as the module wrote it (8 bytes on 64-bit platforms, 4 on others). */
function valueLength(raw: Buffer): number {
  return raw.length >= 8 ? Number(raw.readBigUInt64LE(0)) : raw.readUInt32LE(0);
}

/** A temporary AES-256 key the probes unwrapped into a session: its handle, and its value, which Node's crypto wraps with. */
export interface ProbeTemporaryKey {
  readonly handle: Buffer;
  readonly value: Buffer;
}

/**
 * Runs `probes` with a temporary AES-256 key as an import brings one: wrapped by Node's crypto
 * with `algorithm` under a throwaway session RSA-1024 pair's public key, unwrapped into a session
 * key allowed to unwrap; destroyed after. Undefined when the module refuses any of that.
 */
export function withProbeTemporaryKey<T>(session: graphene.Session, algorithm: WrappingAlgorithm, probes: (temporary: ProbeTemporaryKey) => T): T | undefined {
  const value = randomBytes(32);
  try {
    return withProbeWrappingPair(session, (publicKey, unwrapping) => {
      const wrapped = wrapForProbe(publicKey, algorithm, value);
      const { lib } = session;
      const handle = lib.C_UnwrapKey(session.handle, { mechanism: pkcs11.CKM_RSA_PKCS_OAEP, parameter: OAEP[algorithm] }, unwrapping, wrapped, temporaryKeyTemplate());
      try {
        return probes({ handle, value });
      } finally {
        destroyQuietly(new graphene.SessionObject(handle, session, lib));
      }
    });
  } catch (error) {
    if (ckrOf(error) !== undefined) return undefined;
    throw error;
  }
}

/**
 * Whether the module imports private keys of `family` with the RFC 5649 `mechanism`, found by
 * doing it: a private key Node's crypto made (an RSA-1024 one stands for every RSA size) wrapped
 * under `temporary` with RFC 5649, unwrapped into a session object, and its public key found
 * (publicHalfOf) and compared. False when the module refuses any step.
 */
export function probePrivateKeyImport(session: graphene.Session, temporary: ProbeTemporaryKey, mechanism: number, family: ImportableFamily): boolean {
  const probeFamily: ImportableFamily = family.name === 'RSA' ? { name: 'RSA', bits: 1024 } : family;
  const made: KeyObject = family.name === 'RSA' ? generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey : generateKeyPairSync('ec', { namedCurve: family.curve.node }).privateKey;
  const wrappedPrivateKey = wrapWithPadding(temporary.value, made.export({ type: 'pkcs8', format: 'der' }));
  const { lib } = session;
  try {
    const check = lib.C_UnwrapKey(session.handle, { mechanism }, temporary.handle, wrappedPrivateKey, checkPrivateKeyTemplate(probeFamily));
    try {
      const half = publicHalfOf(session, check, probeFamily);
      return half !== undefined && half.spki.equals(createPublicKey(made).export({ type: 'spki', format: 'der' }));
    } finally {
      destroyQuietly(new graphene.SessionObject(check, session, lib));
    }
  } catch (error) {
    if (ckrOf(error) !== undefined) return false;
    throw error;
  }
}
