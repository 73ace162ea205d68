import * as pkcs11 from 'pkcs11js';
import { AES_256 } from '../../src/hsm/key-kinds/aes-256';
import { missingMechanisms } from '../../src/hsm/mechanisms';

describe('the mechanisms a token must offer', () => {
  it('names each one the token lacks', () => {
    expect(missingMechanisms(new Set([pkcs11.CKM_AES_KEY_GEN, pkcs11.CKM_AES_GCM, pkcs11.CKM_SHA256]), AES_256.mechanisms)).toEqual([]);
    expect(missingMechanisms(new Set([pkcs11.CKM_AES_KEY_GEN, pkcs11.CKM_AES_CBC]), AES_256.mechanisms)).toEqual(['CKM_AES_GCM']);
    expect(missingMechanisms(new Set(), AES_256.mechanisms)).toEqual(['CKM_AES_KEY_GEN', 'CKM_AES_GCM']);
  });
});
