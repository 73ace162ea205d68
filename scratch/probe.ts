import * as pkcs11 from 'pkcs11js';
import { mkdtempSync } from 'node:fs';
const dir = mkdtempSync('/tmp/nss/db-');
const lib = new pkcs11.PKCS11();
lib.load('/usr/lib/x86_64-linux-gnu/libsoftokn3.so');
lib.C_Initialize({ libraryParameters: `configdir='sql:${dir}' certPrefix='' keyPrefix='' secmod='secmod.db' flags=`, flags: pkcs11.CKF_OS_LOCKING_OK } as any);
console.log(lib.C_GetInfo());
for (const slot of lib.C_GetSlotList(true)) { const t = lib.C_GetTokenInfo(slot); console.log(slot.toString('hex'), JSON.stringify(t.label), t.flags.toString(16), t.manufacturerID, t.model); }
const slot = lib.C_GetSlotList(true)[1]!;
let s = lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
lib.C_Login(s, pkcs11.CKU_SO, '');
lib.C_InitPIN(s, 'userpin123');
lib.C_Logout(s);
lib.C_Login(s, pkcs11.CKU_USER, 'userpin123');
const key = lib.C_GenerateKey(s, { mechanism: pkcs11.CKM_AES_KEY_GEN }, [
 { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY }, { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES }, { type: pkcs11.CKA_VALUE_LEN, value: 32 },
 { type: pkcs11.CKA_TOKEN, value: true }, { type: pkcs11.CKA_PRIVATE, value: true }, { type: pkcs11.CKA_SENSITIVE, value: true }, { type: pkcs11.CKA_EXTRACTABLE, value: false },
 { type: pkcs11.CKA_ENCRYPT, value: true }, { type: pkcs11.CKA_DECRYPT, value: true }, { type: pkcs11.CKA_LABEL, value: 'x' }, { type: pkcs11.CKA_ID, value: Buffer.from('abcd') }, { type: pkcs11.CKA_MODIFIABLE, value: false }]);
const iv = Buffer.alloc(12, 1);
for (const [name, type] of [['v240', pkcs11.CK_PARAMS_AES_GCM_v240], ['v3', pkcs11.CK_PARAMS_AES_GCM]] as const) {
  try {
    lib.C_EncryptInit(s, { mechanism: pkcs11.CKM_AES_GCM, parameter: { type, iv, ivBits: 96, aad: Buffer.from('aad'), tagBits: 128 } as any }, key);
    const ct = lib.C_Encrypt(s, Buffer.from('hello world 123456789012'), Buffer.alloc(64));
    console.log(name, 'ok', ct.length);
    ct[0] ^= 1;
    lib.C_DecryptInit(s, { mechanism: pkcs11.CKM_AES_GCM, parameter: { type, iv, ivBits: 96, aad: Buffer.from('aad'), tagBits: 128 } as any }, key);
    try { lib.C_Decrypt(s, ct, Buffer.alloc(64)); } catch (e: any) { console.log('bad tag', e.message); }
  } catch (e: any) { console.log(name, 'fail', e.message); }
}
const mechs = lib.C_GetMechanismList(slot); console.log('mechs', mechs.length, mechs.includes(pkcs11.CKM_AES_GCM), mechs.includes(pkcs11.CKM_AES_KEY_GEN));
console.log(lib.C_GetSessionInfo(s));
// second session: login state
const s2 = lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION); console.log('s2 state', lib.C_GetSessionInfo(s2).state);
lib.C_Finalize();
