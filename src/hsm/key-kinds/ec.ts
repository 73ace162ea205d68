import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { KeyUsage } from '../hsm';
import { signingNeeds } from '../roles/signature-algorithms';
import { keyObjectTemplate } from '../templates';
import { generateKeyPair, probeKeyPair } from './generate';
import type { Curve, KeyKind, PairUses } from './key-kind';
import { ecPublicKeyInfo } from './public-key-info';

const USES: Partial<Record<KeyUsage, PairUses>> = {
  SIGN_VERIFY: { private: ['sign'], public: ['verify'] },
  // The peer's public key is the other input of a derivation: this key pair's public key does nothing in the token.
  KEY_AGREEMENT: { private: ['derive'], public: [] },
};

/** An EC key pair on a named curve: to sign (ECDSA) or to agree keys (ECDH), never both. A new curve is one such line (its own file, or below). */
export function ecKind<S extends string>(spec: S, curve: Curve): KeyKind<S> {
  const templates = (ref: Parameters<typeof keyObjectTemplate>[0], uses: PairUses) => ({
    public: keyObjectTemplate(ref, { objectClass: 'public', keyType: graphene.KeyType.EC, uses: uses.public, attributes: { paramsEC: curve.params } }),
    private: keyObjectTemplate(ref, { objectClass: 'private', keyType: graphene.KeyType.EC, uses: uses.private }),
  });
  return {
    spec,
    family: { name: 'EC', curve },
    objectClasses: ['private', 'public'],
    defaultUsage: 'SIGN_VERIFY',
    generation: [{ type: pkcs11.CKM_EC_KEY_PAIR_GEN, name: 'CKM_EC_KEY_PAIR_GEN', flags: pkcs11.CKF_GENERATE_KEY_PAIR, keySize: curve.bits }],
    usages: new Map([
      ['SIGN_VERIFY', signingNeeds('EC', curve.bits)],
      ['KEY_AGREEMENT', [[{ type: pkcs11.CKM_ECDH1_DERIVE, name: 'CKM_ECDH1_DERIVE', flags: pkcs11.CKF_DERIVE, keySize: curve.bits }]]],
    ]),
    // One EC key pair mechanism serves every curve: whether the module knows this one, only a generation says.
    probe: (session) =>
      probeKeyPair(
        session,
        pkcs11.CKM_EC_KEY_PAIR_GEN,
        { keyType: graphene.KeyType.EC, paramsEC: curve.params, verify: true },
        { keyType: graphene.KeyType.EC, sensitive: true, extractable: false, sign: true },
      ),
    generate: (session, ref, usage) => {
      const uses = USES[usage];
      if (!uses) return Promise.reject(new Error(`${spec} keys cannot be made for ${usage}`));
      const made = templates(ref, uses);
      return generateKeyPair(session, pkcs11.CKM_EC_KEY_PAIR_GEN, made.public, made.private);
    },
    publicKeyInfo: (session, handle) => ecPublicKeyInfo(session, handle, curve.jwk, curve.bytes),
    objectUses: (usage) => USES[usage],
  };
}

export const EC_P256 = ecKind('EC_P256', { params: Buffer.from('06082a8648ce3d030107', 'hex'), jwk: 'P-256', node: 'prime256v1', bytes: 32, bits: 256 });
export const EC_P384 = ecKind('EC_P384', { params: Buffer.from('06052b81040022', 'hex'), jwk: 'P-384', node: 'secp384r1', bytes: 48, bits: 384 });
export const SECP256K1 = ecKind('SECP256K1', { params: Buffer.from('06052b8104000a', 'hex'), jwk: 'secp256k1', node: 'secp256k1', bytes: 32, bits: 256 });
