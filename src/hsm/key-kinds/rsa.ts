import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { KeyUsage } from '../hsm';
import { signingNeeds } from '../roles/signature-algorithms';
import { keyObjectTemplate } from '../templates';
import { generateKeyPair } from './generate';
import type { KeyKind, PairUses } from './key-kind';
import { rsaPublicKeyInfo } from './public-key-info';

/** F4, the public exponent every KMS uses. */
const PUBLIC_EXPONENT = Buffer.from([0x01, 0x00, 0x01]);

/** What the private and the public key may do, by usage. */
const USES: Partial<Record<KeyUsage, PairUses>> = {
  SIGN_VERIFY: { private: ['sign'], public: ['verify'] },
  ENCRYPT_DECRYPT: { private: ['decrypt'], public: ['encrypt'] },
};

/** An RSA key pair of `bits`: to sign (PSS, PKCS#1 v1.5) or to decrypt (OAEP), never both. */
export function rsaKind<S extends string>(spec: S, bits: number): KeyKind<S> {
  return {
    spec,
    family: { name: 'RSA', bits },
    objectClasses: ['private', 'public'],
    defaultUsage: 'SIGN_VERIFY',
    generation: [{ type: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, name: 'CKM_RSA_PKCS_KEY_PAIR_GEN', flags: pkcs11.CKF_GENERATE_KEY_PAIR, keySize: bits }],
    usages: new Map([
      ['SIGN_VERIFY', signingNeeds('RSA', bits)],
      ['ENCRYPT_DECRYPT', [[{ type: pkcs11.CKM_RSA_PKCS_OAEP, name: 'CKM_RSA_PKCS_OAEP', flags: pkcs11.CKF_DECRYPT, keySize: bits }]]],
    ]),
    generate: (session, ref, usage) => {
      const uses = USES[usage];
      if (!uses) return Promise.reject(new Error(`${spec} keys cannot be made for ${usage}`));
      const common = { keyType: graphene.KeyType.RSA };
      return generateKeyPair(
        session,
        pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN,
        keyObjectTemplate(ref, { ...common, objectClass: 'public', uses: uses.public, attributes: { modulusBits: bits, publicExponent: PUBLIC_EXPONENT } }),
        keyObjectTemplate(ref, { ...common, objectClass: 'private', uses: uses.private }),
      );
    },
    publicKeyInfo: rsaPublicKeyInfo,
    objectUses: (usage) => USES[usage],
  };
}

export const RSA_2048 = rsaKind('RSA_2048', 2048);
export const RSA_3072 = rsaKind('RSA_3072', 3072);
export const RSA_4096 = rsaKind('RSA_4096', 4096);
