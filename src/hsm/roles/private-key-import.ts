import { createCipheriv, createECDH, createHash, createPublicKey, ECDH, randomBytes, verify } from 'node:crypto';
import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { Curve, KindFamily } from '../key-kinds/key-kind';
import { readAttributes, rsaPublicKeyInfo } from '../key-kinds/public-key-info';

/**
 * What importing an asymmetric private key needs beyond the symmetric import (key-import.ts): the
 * caller wraps a temporary AES key under the import's RSA wrapping key (`encrypted_key_material`),
 * and its private key, DER PKCS#8, under that AES key with AES key wrap with padding (RFC 5649,
 * `encrypted_privatekey`). Both are unwrapped in the HSM; the private key is never in this process.
 */

/**
 * RFC 5649 by the names modules give it. PKCS#11 3.0 calls it CKM_AES_KEY_WRAP_KWP; SoftHSM 2.6
 * has it as CKM_AES_KEY_WRAP_PAD, the name NSS's softoken gives to what 2.40's text describes
 * (PKCS#7 padding, then RFC 3394): another algorithm. So a name is not trusted: each is tried at
 * start-up with a private key Node's crypto wrapped (probePrivateKeyImport), in this order.
 */
export const PAD_WRAP_MECHANISMS: readonly { readonly type: number; readonly name: string }[] = [
  { type: 0x210b, name: 'CKM_AES_KEY_WRAP_KWP' },
  { type: pkcs11.CKM_AES_KEY_WRAP_PAD, name: 'CKM_AES_KEY_WRAP_PAD' },
];

/**
 * `data` under `key` (16, 24 or 32 bytes) with AES key wrap with padding, RFC 5649, as the caller
 * of import-key-material wraps a private key (`openssl enc -id-aes256-wrap-pad -iv A65959A6`):
 * what the command line's import and the start-up probe make.
 */
export function wrapWithPadding(key: Buffer, data: Buffer): Buffer {
  // RFC 5649's alternative initial value, which Node's id-aes*-wrap-pad ciphers take as their IV.
  const cipher = createCipheriv(`id-aes${key.length * 8}-wrap-pad`, key, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/** The temporary key's lengths the API takes (KMS.2610 otherwise): AES-128 or AES-256. */
export const TEMPORARY_KEY_BYTES: readonly number[] = [16, 32];

/** The importable families: a key pair whose public key the HSM can give from its private key alone. */
export type ImportableFamily = Extract<KindFamily, { name: 'RSA' | 'EC' }>;

export function isImportableFamily(family: KindFamily): family is ImportableFamily {
  return family.name === 'RSA' || family.name === 'EC';
}

/**
 * The template of the session object a private key is first unwrapped into, to be checked and
 * its public key found before anything is written to the token: sensitive and never extractable
 * as the token's will be, allowed to sign (an EC key's public point is told by a signature) and,
 * for EC, to derive (its x coordinate).
 */
export function checkPrivateKeyTemplate(family: ImportableFamily): pkcs11.Template {
  return graphene.Template.toPkcs11({
    class: graphene.ObjectClass.PRIVATE_KEY,
    keyType: family.name === 'RSA' ? graphene.KeyType.RSA : graphene.KeyType.EC,
    token: false,
    private: true,
    sensitive: true,
    extractable: false,
    sign: true,
    derive: family.name === 'EC',
    decrypt: false,
    unwrap: false,
  });
}

/** The public half of an unwrapped private key: what its token public key object is made of, and its SPKI. */
export interface PublicHalf {
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  /** The public key object's own attributes (CKA_MODULUS and CKA_PUBLIC_EXPONENT, or CKA_EC_PARAMS and CKA_EC_POINT). */
  readonly attributes: Pick<graphene.ITemplate, 'modulus' | 'publicExponent' | 'paramsEC' | 'pointEC'>;
}

/** The private key is no key: its public half does not verify what it signs (an RSA key whose modulus is not its primes' product, an EC scalar out of range). */
export class InconsistentPrivateKey extends Error {}

/**
 * The public key of the session private key `handle` (checkPrivateKeyTemplate), undefined when the
 * key is not of `family` (another modulus size, another curve). RSA's modulus and exponent are
 * attributes of its private key; a signature the HSM makes with the key must verify with them
 * (InconsistentPrivateKey otherwise: a PKCS#8 whose parts do not agree). An EC private key has no
 * point in PKCS#11 (SoftHSM keeps only the scalar d), so it is found in the HSM: ECDH with the
 * curve's generator G gives the x coordinate of d·G, the public point; of the two points with that
 * x, the one that verifies a signature the HSM makes with the key is it.
 */
export function publicHalfOf(session: graphene.Session, handle: Buffer, family: ImportableFamily): PublicHalf | undefined {
  // NSS's softoken makes the key the PKCS#8 holds, whatever key type the template names.
  const [keyType] = readAttributes(session, handle, [pkcs11.CKA_KEY_TYPE]);
  if (ulong(keyType!) !== (family.name === 'RSA' ? pkcs11.CKK_RSA : pkcs11.CKK_EC)) return undefined;
  if (family.name === 'RSA') {
    const spki = rsaPublicKeyInfo(session, handle);
    const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
    if (publicKey.asymmetricKeyDetails?.modulusLength !== family.bits) return undefined;
    const signed = randomBytes(32);
    const digestInfo = Buffer.concat([SHA256_DIGEST_INFO, createHash('sha256').update(signed).digest()]);
    const signature = signWith(session, handle, pkcs11.CKM_RSA_PKCS, digestInfo, family.bits / 8);
    if (!verify('sha256', signed, publicKey, signature)) throw new InconsistentPrivateKey('the RSA private key does not sign for its own modulus and exponent');
    const [modulus, publicExponent] = readAttributes(session, handle, [pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT]);
    return { spki, attributes: { modulus: modulus!, publicExponent: publicExponent! } };
  }
  const { curve } = family;
  const [params] = readAttributes(session, handle, [pkcs11.CKA_EC_PARAMS]);
  if (!params!.equals(curve.params)) return undefined;
  const x = ecdhWithGenerator(session, handle, curve);
  const signed = randomBytes(32);
  const signature = signWith(session, handle, pkcs11.CKM_ECDSA, createHash('sha256').update(signed).digest(), 2 * curve.bytes);
  for (const prefix of [0x02, 0x03]) {
    const point = ECDH.convertKey(Buffer.concat([Buffer.from([prefix]), x]), curve.node, undefined, undefined, 'uncompressed') as Buffer;
    const key = createPublicKey({ key: { kty: 'EC', crv: curve.jwk, x: x.toString('base64url'), y: point.subarray(1 + curve.bytes).toString('base64url') }, format: 'jwk' });
    if (verify('sha256', signed, { key, dsaEncoding: 'ieee-p1363' }, signature)) {
      return { spki: key.export({ type: 'spki', format: 'der' }), attributes: { paramsEC: curve.params, pointEC: octetString(point) } };
    }
  }
  // An out-of-range scalar (which a module may take as another): no point of the key's own.
  throw new InconsistentPrivateKey('neither point with the x coordinate ECDH gave verifies a signature of the EC private key');
}

/** The x coordinate of d·G: CKM_ECDH1_DERIVE (no KDF) of the private key with the curve's generator, into a session secret read once. */
function ecdhWithGenerator(session: graphene.Session, handle: Buffer, curve: Curve): Buffer {
  const generator = generatorOf(curve);
  const { lib } = session;
  const parameter: pkcs11.ECDH1 = { type: pkcs11.CK_PARAMS_EC_DH, kdf: pkcs11.CKD_NULL, publicData: generator };
  const secret = lib.C_DeriveKey(
    session.handle,
    { mechanism: pkcs11.CKM_ECDH1_DERIVE, parameter },
    handle,
    graphene.Template.toPkcs11({
      class: graphene.ObjectClass.SECRET_KEY,
      keyType: graphene.KeyType.GENERIC_SECRET,
      token: false,
      // The public point's x coordinate, not a secret: read once, then destroyed.
      sensitive: false,
      extractable: true,
      valueLen: curve.bytes,
    }),
  );
  try {
    const [x] = readAttributes(session, secret, [pkcs11.CKA_VALUE]);
    if (x!.length !== curve.bytes) throw new Error(`ECDH gave ${x!.length} bytes, not a ${curve.bytes}-byte coordinate`);
    return Buffer.from(x!);
  } finally {
    new graphene.SessionObject(secret, session, lib).destroy();
  }
}

/** Each curve's generator G, uncompressed, by Node's name of the curve: worked out once. */
const GENERATORS = new Map<string, Buffer>();

/** The curve's generator G, uncompressed: the public key of the private key 1 (Node's crypto works it out; no constant is copied here). */
function generatorOf(curve: Curve): Buffer {
  let generator = GENERATORS.get(curve.node);
  if (!generator) {
    const one = Buffer.alloc(curve.bytes);
    one[curve.bytes - 1] = 1;
    const ecdh = createECDH(curve.node);
    ecdh.setPrivateKey(one);
    generator = ecdh.getPublicKey();
    GENERATORS.set(curve.node, generator);
  }
  return generator;
}

/** A signature of `data` with the session key by `mechanism` (raw: the caller hashed), at most `bytes` long. */
function signWith(session: graphene.Session, handle: Buffer, mechanism: number, data: Buffer, bytes: number): Buffer {
  const { lib } = session;
  lib.C_SignInit(session.handle, { mechanism }, handle);
  return Buffer.from(lib.C_Sign(session.handle, data, Buffer.alloc(bytes)));
}

/** PKCS#1 v1.5's DigestInfo prefix of a SHA-256 digest (RFC 8017, 9.2 note 1): what CKM_RSA_PKCS signs for a SHA-256 signature. */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/** CKA_EC_POINT as PKCS#11 has it: the uncompressed point in a DER OCTET STRING (our curves' points are under 128 bytes). */
function octetString(point: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x04, point.length]), point]);
}

/** A CK_ULONG attribute as the module wrote it (8 bytes on 64-bit platforms, 4 on others). */
function ulong(raw: Buffer): number {
  return raw.length >= 8 ? Number(raw.readBigUInt64LE(0)) : raw.readUInt32LE(0);
}
