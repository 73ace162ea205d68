import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { MaterialRef } from '../hsm';
import { objectId, objectLabel } from '../templates';
import type { KeyKind } from './key-kind';

/**
 * A customer master key for AES-256-GCM: generated in the token, a persistent private object that is
 * sensitive and never extractable, allowed to encrypt and decrypt only (no wrap, unwrap, sign,
 * derive), so that its value cannot leave the HSM by any route.
 */
export function aes256Template(ref: MaterialRef): graphene.ITemplate {
  return {
    class: graphene.ObjectClass.SECRET_KEY,
    keyType: graphene.KeyType.AES,
    valueLen: 32,
    token: true,
    private: true,
    sensitive: true,
    extractable: false,
    modifiable: false,
    encrypt: true,
    decrypt: true,
    wrap: false,
    unwrap: false,
    sign: false,
    verify: false,
    derive: false,
    id: objectId(ref),
    label: objectLabel(ref),
  };
}

export const AES_256: KeyKind = {
  spec: 'AES_256',
  mechanisms: new Map([
    [pkcs11.CKM_AES_KEY_GEN, 'CKM_AES_KEY_GEN'],
    [pkcs11.CKM_AES_GCM, 'CKM_AES_GCM'],
  ]),
  generate: (session, ref) =>
    new Promise((resolve, reject) => {
      session.generateKey(graphene.KeyGenMechanism.AES, aes256Template(ref), (error, key) => {
        if (error) reject(error);
        else if (!key) reject(new Error('the module generated no key'));
        else resolve([key.handle]);
      });
    }),
};
