/**
 * The ceiling's create-datakey answer: exactly the work a correct answer needs, with raw pkcs11js
 * calls on one logged-in session and a key handle found once. The ceiling server
 * (ceiling-server.ts) answers HTTP with it and the in-process comparison (hsm-seam.ts) times it
 * against the service's seam, so both measure the same ceiling.
 */
import * as pkcs11 from 'pkcs11js';
import { encodeBinding } from '../src/kms/binding';
import { encodeBlob } from '../src/kms/blob-codec';

/** A setting of the benchmark's own processes, which the benchmark always passes. */
export function benchEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The create-datakey response body in the service's JSON: upper-case hex of the data key and its blob. */
export function datakeyAnswer(keyId: string, dataKey: Buffer, blob: Buffer): string {
  return JSON.stringify({ key_id: keyId, plain_text: dataKey.toString('hex').toUpperCase(), cipher_text: blob.toString('hex').toUpperCase() });
}

/** The key's material version 0 (labels are kms/<key id>/v<version>), under `projectId`. */
export function ceilingAnswer(lib: pkcs11.PKCS11, session: Buffer, key: Buffer, keyId: string, projectId: string): string {
  const materialVersion = 0;
  const aad = encodeBinding({ purpose: 'datakey', keyId, materialVersion, projectId, context: '', aad: '' });
  const random = lib.C_GenerateRandom(session, Buffer.alloc(32 + 12));
  const dataKey = random.subarray(0, 32);
  const iv = random.subarray(32);
  const gcm: pkcs11.AesGCM = { type: pkcs11.CK_PARAMS_AES_GCM_v240, iv, aad, ivBits: 96, tagBits: 128 };
  lib.C_EncryptInit(session, { mechanism: pkcs11.CKM_AES_GCM, parameter: gcm }, key);
  const ciphertext = lib.C_Encrypt(session, dataKey, Buffer.alloc(32 + 16));
  const body = datakeyAnswer(keyId, dataKey, encodeBlob({ keyId, materialVersion, iv, ciphertext }));
  random.fill(0);
  return body;
}
