import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { MacAlgorithm } from '../hsm';
import { keyObjectTemplate } from '../templates';
import { destroyQuietly, generateSecretKey } from './generate';
import type { KeyKind, MechanismNeed } from './key-kind';

/** The HMAC mechanism of each MAC algorithm (key sizes in bytes, as PKCS#11 has them for HMAC). */
export const MAC_MECHANISMS: Readonly<Record<MacAlgorithm, { readonly type: number; readonly name: string; readonly bytes: number }>> = {
  HMAC_SHA_256: { type: pkcs11.CKM_SHA256_HMAC, name: 'CKM_SHA256_HMAC', bytes: 32 },
  HMAC_SHA_384: { type: pkcs11.CKM_SHA384_HMAC, name: 'CKM_SHA384_HMAC', bytes: 48 },
  HMAC_SHA_512: { type: pkcs11.CKM_SHA512_HMAC, name: 'CKM_SHA512_HMAC', bytes: 64 },
};

/**
 * An HMAC key: a generic secret as long as its hash's output (RFC 2104's advice), sensitive and
 * never extractable, allowed to sign and verify (make and check MACs) only.
 */
export function hmacKind<S extends string>(spec: S, algorithm: MacAlgorithm): KeyKind<S> {
  const mac = MAC_MECHANISMS[algorithm];
  const template = (ref: Parameters<typeof keyObjectTemplate>[0]): graphene.ITemplate =>
    keyObjectTemplate(ref, { objectClass: 'secret', keyType: graphene.KeyType.GENERIC_SECRET, uses: ['sign', 'verify'], attributes: { valueLen: mac.bytes } });
  const macNeed: MechanismNeed = { type: mac.type, name: mac.name, flags: pkcs11.CKF_SIGN | pkcs11.CKF_VERIFY, keySize: mac.bytes };
  return {
    spec,
    family: { name: 'HMAC', mac: algorithm },
    objectClasses: ['secret'],
    defaultUsage: 'GENERATE_VERIFY_MAC',
    // Modules disagree on the unit of a generic secret's sizes (SoftHSM: bits, NSS: bytes): the probe generates one instead.
    generation: [{ type: pkcs11.CKM_GENERIC_SECRET_KEY_GEN, name: 'CKM_GENERIC_SECRET_KEY_GEN', flags: pkcs11.CKF_GENERATE }],
    usages: new Map([['GENERATE_VERIFY_MAC', [[macNeed]]]]),
    probe: (session) => {
      const key = session.generateKey(pkcs11.CKM_GENERIC_SECRET_KEY_GEN, {
        keyType: graphene.KeyType.GENERIC_SECRET,
        valueLen: mac.bytes,
        token: false,
        sensitive: true,
        extractable: false,
        sign: true,
        verify: true,
      });
      destroyQuietly(key);
    },
    generate: (session, ref, usage) => {
      if (usage !== 'GENERATE_VERIFY_MAC') return Promise.reject(new Error(`${spec} keys cannot be made for ${usage}`));
      return generateSecretKey(session, pkcs11.CKM_GENERIC_SECRET_KEY_GEN, template(ref));
    },
  };
}

export const HMAC_256 = hmacKind('HMAC_256', 'HMAC_SHA_256');
export const HMAC_384 = hmacKind('HMAC_384', 'HMAC_SHA_384');
export const HMAC_512 = hmacKind('HMAC_512', 'HMAC_SHA_512');
