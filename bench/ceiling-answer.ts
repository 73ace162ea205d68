/**
 * The ceiling's create-datakey answer: exactly the work a correct answer needs, with raw pkcs11js
 * calls on one logged-in session and a key handle found once. The ceiling server
 * (ceiling-server.ts) answers HTTP with it and the in-process comparison (hsm-seam.ts) times it
 * against the service's seam, so both measure the same ceiling.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import * as pkcs11 from 'pkcs11js';
import { encodeBinding } from '../src/kms/binding';
import { encodeBlob } from '../src/kms/blob-codec';

/** A setting of the benchmark's own processes, which the benchmark always passes. */
export function benchEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The ceiling's state: a loaded module, one logged-in session and the CMK's handle, found once. */
export interface CeilingSession {
  readonly lib: pkcs11.PKCS11;
  readonly session: Buffer;
  readonly key: Buffer;
}

/** A loaded module and one logged-in session on the token of BENCH_TOKEN_LABEL. */
export interface TokenSession {
  readonly lib: pkcs11.PKCS11;
  readonly session: Buffer;
}

/**
 * Opens a session on the token of BENCH_TOKEN_LABEL, logged in with BENCH_PIN_FILE's PIN. The
 * module may be initialised already (the in-process comparison's seam did it: PKCS#11 state is
 * per process, so this is a second handle on it, and its login is the seam's).
 */
export function openTokenSession(): TokenSession {
  const lib = new pkcs11.PKCS11();
  lib.load(benchEnv('BENCH_MODULE'));
  let initialisedHere = true;
  try {
    lib.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
  } catch (error) {
    if (!(error instanceof pkcs11.Pkcs11Error && error.code === pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) throw error;
    initialisedHere = false;
  }
  const label = benchEnv('BENCH_TOKEN_LABEL');
  const slot = lib.C_GetSlotList(true).find((candidate) => lib.C_GetTokenInfo(candidate).label.replace(/\0+$/, '').trim() === label);
  if (!slot) throw new Error(`no token ${label}`);
  const session = lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
  if (initialisedHere) lib.C_Login(session, pkcs11.CKU_USER, readFileSync(benchEnv('BENCH_PIN_FILE'), 'utf8').trim());
  return { lib, session };
}

/** The handle of the object of `objectClass` labelled `label` (kms/<key id>/v<version>: a key pair's two objects share it). */
export function findKeyObject({ lib, session }: TokenSession, objectClass: number, label: string): Buffer {
  lib.C_FindObjectsInit(session, [
    { type: pkcs11.CKA_CLASS, value: objectClass },
    { type: pkcs11.CKA_LABEL, value: label },
  ]);
  const [key] = lib.C_FindObjects(session, 1);
  lib.C_FindObjectsFinal(session);
  if (!key) throw new Error(`no key ${label} of class ${objectClass}`);
  return key;
}

/**
 * Listens on PORT (0: any) on loopback, writes `{"listening": address}` on stdout for the
 * benchmark to read, and on SIGTERM or SIGINT closes the server and the token session and exits.
 */
export function serveCeiling(server: Server, { lib, session }: TokenSession): void {
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ listening: server.address() })}\n`);
  });
  const stop = (): void => {
    server.close();
    lib.C_Logout(session);
    lib.C_CloseSession(session);
    lib.C_Finalize();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** Opens the ceiling's session (openTokenSession) and finds BENCH_KEY_LABEL's key. */
export function openCeilingSession(): CeilingSession {
  const token = openTokenSession();
  return { ...token, key: findKeyObject(token, pkcs11.CKO_SECRET_KEY, benchEnv('BENCH_KEY_LABEL')) };
}

/** The create-datakey response body in the service's JSON: upper-case hex of the data key and its blob. */
export function datakeyAnswer(keyId: string, dataKey: Buffer, blob: Buffer): string {
  return JSON.stringify({ key_id: keyId, plain_text: dataKey.toString('hex').toUpperCase(), cipher_text: blob.toString('hex').toUpperCase() });
}

/** The key's material version 0 (labels are kms/<key id>/v<version>), under `projectId`. */
export function ceilingAnswer({ lib, session, key }: CeilingSession, keyId: string, projectId: string): string {
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
