import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { MaterialRef } from '../hsm';
import { keyObjectTemplate } from '../templates';
import { generateSecretKey } from './generate';
import type { KeyKind } from './key-kind';

/**
 * A customer master key for AES-256-GCM: generated in the token, a persistent private object that is
 * sensitive and never extractable, allowed to encrypt and decrypt only (no wrap, unwrap, sign,
 * derive), so that its value cannot leave the HSM by any route. Its layout is pinned by
 * test/hsm/token-layout.test.ts: tokens made by earlier releases hold such keys.
 */
export function aes256Template(ref: MaterialRef): graphene.ITemplate {
  return keyObjectTemplate(ref, {
    objectClass: 'secret',
    keyType: graphene.KeyType.AES,
    uses: ['encrypt', 'decrypt'],
    attributes: { valueLen: 32 },
  });
}

/** AES_256 is the service's own kind too (its data keys and credentials are sealed with it): a module without these mechanisms cannot serve. */
export const AES_256: KeyKind<'AES_256'> & { readonly mechanisms: ReadonlyMap<number, string> } = {
  spec: 'AES_256',
  family: { name: 'AES' },
  objectClasses: ['secret'],
  defaultUsage: 'ENCRYPT_DECRYPT',
  mechanisms: new Map([
    [pkcs11.CKM_AES_KEY_GEN, 'CKM_AES_KEY_GEN'],
    [pkcs11.CKM_AES_GCM, 'CKM_AES_GCM'],
  ]),
  // No key sizes: vendors disagree on their unit for AES (bytes, as the standard says, or bits).
  generation: [{ type: pkcs11.CKM_AES_KEY_GEN, name: 'CKM_AES_KEY_GEN', flags: pkcs11.CKF_GENERATE }],
  usages: new Map([['ENCRYPT_DECRYPT', [[{ type: pkcs11.CKM_AES_GCM, name: 'CKM_AES_GCM', flags: pkcs11.CKF_ENCRYPT | pkcs11.CKF_DECRYPT }]]]]),
  generate: (session, ref) => generateSecretKey(session, pkcs11.CKM_AES_KEY_GEN, aes256Template(ref)),
};
