import * as graphene from 'graphene-pk11';
import { signingNeeds } from '../roles/signature-algorithms';
import { keyObjectTemplate } from '../templates';
import { generateKeyPair, probeKeyPair } from './generate';
import type { KeyKind } from './key-kind';
import { ed25519PublicKeyInfo } from './public-key-info';

/** PKCS#11 3.0's Edwards-curve names, which pkcs11js (2.40) does not have. */
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKK_EC_EDWARDS: number = 0x40;
/** CKA_EC_PARAMS of Ed25519: the DER of its OID, 1.3.101.112 (SoftHSM 2.6 takes this form, not the printable name). */
const ED25519_PARAMS = Buffer.from('06032b6570', 'hex');

/** An Ed25519 key pair, to sign (pure EdDSA over the message) only. */
export const ED25519: KeyKind<'ED25519'> = {
  spec: 'ED25519',
  family: { name: 'EDWARDS' },
  objectClasses: ['private', 'public'],
  defaultUsage: 'SIGN_VERIFY',
  generation: [{ type: CKM_EC_EDWARDS_KEY_PAIR_GEN, name: 'CKM_EC_EDWARDS_KEY_PAIR_GEN', flags: graphene.MechanismFlag.GENERATE_KEY_PAIR, keySize: 256 }],
  usages: new Map([['SIGN_VERIFY', signingNeeds('EDWARDS', 256)]]),
  probe: (session) =>
    probeKeyPair(
      session,
      CKM_EC_EDWARDS_KEY_PAIR_GEN,
      { keyType: CKK_EC_EDWARDS, paramsEC: ED25519_PARAMS, verify: true },
      { keyType: CKK_EC_EDWARDS, sensitive: true, extractable: false, sign: true },
    ),
  generate: (session, ref, usage) => {
    if (usage !== 'SIGN_VERIFY') return Promise.reject(new Error(`ED25519 keys cannot be made for ${usage}`));
    return generateKeyPair(
      session,
      CKM_EC_EDWARDS_KEY_PAIR_GEN,
      keyObjectTemplate(ref, { objectClass: 'public', keyType: CKK_EC_EDWARDS, uses: ['verify'], attributes: { paramsEC: ED25519_PARAMS } }),
      keyObjectTemplate(ref, { objectClass: 'private', keyType: CKK_EC_EDWARDS, uses: ['sign'] }),
    );
  },
  publicKeyInfo: ed25519PublicKeyInfo,
};
