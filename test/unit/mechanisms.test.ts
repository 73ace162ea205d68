import * as pkcs11 from 'pkcs11js';
import { missingMechanisms } from '../../src/hsm/mechanisms';

describe('the mechanisms a token must offer', () => {
  it('names each one the token lacks', () => {
    expect(missingMechanisms([pkcs11.CKM_AES_KEY_GEN, pkcs11.CKM_AES_GCM, pkcs11.CKM_SHA256])).toEqual([]);
    expect(missingMechanisms([pkcs11.CKM_AES_KEY_GEN, pkcs11.CKM_AES_CBC])).toEqual(['CKM_AES_GCM']);
    expect(missingMechanisms([])).toEqual(['CKM_AES_KEY_GEN', 'CKM_AES_GCM']);
  });
});
