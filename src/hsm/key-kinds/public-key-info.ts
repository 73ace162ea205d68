import { createPublicKey, type JsonWebKey } from 'node:crypto';
import type * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';

/**
 * Public key objects' attributes (C_GetAttributeValue) as DER SubjectPublicKeyInfo, built by
 * Node's crypto from a JWK (which also checks that an EC point is on its curve), not by hand.
 */

/** The attributes `types` of object `handle`, in order. */
export function readAttributes(session: graphene.Session, handle: Buffer, types: readonly number[]): Buffer[] {
  const read = session.lib.C_GetAttributeValue(
    session.handle,
    handle,
    types.map((type) => ({ type })),
  );
  return read.map((attribute) => {
    if (!Buffer.isBuffer(attribute.value)) throw new Error(`attribute 0x${attribute.type.toString(16)} was not returned`);
    return attribute.value;
  });
}

function spki(jwk: JsonWebKey): Buffer {
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
}

/** An RSA public key object's CKA_MODULUS and CKA_PUBLIC_EXPONENT as SPKI. */
export function rsaPublicKeyInfo(session: graphene.Session, handle: Buffer): Buffer {
  const [modulus, exponent] = readAttributes(session, handle, [pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT]);
  return spki({ kty: 'RSA', n: unsigned(modulus!).toString('base64url'), e: unsigned(exponent!).toString('base64url') });
}

/**
 * The raw point of CKA_EC_POINT, `length` bytes: PKCS#11 has the module return it DER-encoded (an
 * OCTET STRING), and some modules return it bare; which one is told by the length, not by the first
 * byte (an uncompressed point begins with 0x04 too).
 */
export function ecPoint(attribute: Buffer, length: number): Buffer {
  if (attribute.length === length) return attribute;
  if (attribute[0] === 0x04) {
    const short = attribute[1]! < 0x80;
    const contentLength = short ? attribute[1]! : attribute[1] === 0x81 ? attribute[2]! : -1;
    const start = short ? 2 : 3;
    if (contentLength === length && attribute.length === start + length) return attribute.subarray(start);
  }
  throw new Error(`CKA_EC_POINT is neither a ${length}-byte point nor an OCTET STRING of one`);
}

/** A Weierstrass curve's public key object (CKA_EC_POINT, uncompressed) as SPKI; `curve` is the JWK's name. */
export function ecPublicKeyInfo(session: graphene.Session, handle: Buffer, curve: string, coordinateBytes: number): Buffer {
  const [attribute] = readAttributes(session, handle, [pkcs11.CKA_EC_POINT]);
  const point = ecPoint(attribute!, 1 + 2 * coordinateBytes);
  if (point[0] !== 0x04) throw new Error('CKA_EC_POINT is not an uncompressed point');
  return spki({
    kty: 'EC',
    crv: curve,
    x: point.subarray(1, 1 + coordinateBytes).toString('base64url'),
    y: point.subarray(1 + coordinateBytes).toString('base64url'),
  });
}

/** An Ed25519 public key object (CKA_EC_POINT, the 32-byte encoding) as SPKI. */
export function ed25519PublicKeyInfo(session: graphene.Session, handle: Buffer): Buffer {
  const [attribute] = readAttributes(session, handle, [pkcs11.CKA_EC_POINT]);
  return spki({ kty: 'OKP', crv: 'Ed25519', x: ecPoint(attribute!, 32).toString('base64url') });
}

/** A big-endian integer without its leading zero bytes (JWK's form). */
function unsigned(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  return value.subarray(start);
}
