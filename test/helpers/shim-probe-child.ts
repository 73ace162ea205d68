import * as pkcs11 from 'pkcs11js';
import type { GcmParameter, ProbeOp, ProbeOps } from './shim-probe';
import { tokenLabelOf } from './token-label';

/**
 * The child of test/helpers/shim-probe.ts: loads the module named by argv[2] with pkcs11js (the
 * shim reads its KMS_SHIM_* settings from this process's environment), logs in to the token
 * KMS_PROBE_TOKEN_LABEL with KMS_PROBE_PIN, makes the AES session key KMS_PROBE_KEY, says "ready",
 * then runs what its parent asks and answers each request with its result or its CKR.
 */

const lib = new pkcs11.PKCS11();
const pin = process.env.KMS_PROBE_PIN ?? '';
const keyValue = Buffer.from(process.env.KMS_PROBE_KEY ?? '', 'hex');
let slot: Buffer;
let session: Buffer;
let key: Buffer;
const extraSessions: Buffer[] = [];

function open(): void {
  lib.C_Initialize();
  const found = lib.C_GetSlotList(true).find((candidate) => tokenLabelOf(lib, candidate) === process.env.KMS_PROBE_TOKEN_LABEL);
  if (!found) throw new Error(`token ${process.env.KMS_PROBE_TOKEN_LABEL} not found`);
  slot = found;
  session = lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
  lib.C_Login(session, pkcs11.CKU_USER, pin);
  key = lib.C_CreateObject(session, [
    { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
    { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
    { type: pkcs11.CKA_TOKEN, value: false },
    { type: pkcs11.CKA_ENCRYPT, value: true },
    { type: pkcs11.CKA_DECRYPT, value: true },
    { type: pkcs11.CKA_VALUE, value: keyValue },
  ]);
}

function mechanism(parameter: GcmParameter): pkcs11.Mechanism {
  const aad = parameter.aad ?? Buffer.alloc(0);
  const v240: pkcs11.AesGCM = { type: pkcs11.CK_PARAMS_AES_GCM_v240, iv: parameter.iv, aad, ivBits: parameter.iv.length * 8, tagBits: 128 };
  // pkcs11js reads no ivBits for this type (its typing asks for one all the same).
  const plain: pkcs11.IParams & Omit<pkcs11.AesGCM, 'ivBits'> = { type: pkcs11.CK_PARAMS_AES_GCM, iv: parameter.iv, aad, tagBits: 128 };
  return { mechanism: pkcs11.CKM_AES_GCM, parameter: parameter.type === 'CK_PARAMS_AES_GCM_v240' ? v240 : plain };
}

const handlers: { [K in ProbeOp]: (args: ProbeOps[K]['args']) => ProbeOps[K]['result'] } = {
  encrypt({ parameter, data }) {
    lib.C_EncryptInit(session, mechanism(parameter), key);
    const out = lib.C_Encrypt(session, data, Buffer.alloc(data.length + 64));
    // The IV buffer itself: the one pkcs11js handed the module, where a token may have written its IV.
    return { iv: parameter.iv, data: Buffer.from(out) };
  },
  decrypt({ parameter, data }) {
    lib.C_DecryptInit(session, mechanism(parameter), key);
    return Buffer.from(lib.C_Decrypt(session, data, Buffer.alloc(data.length + 64)));
  },
  openSessions({ count, rw }) {
    let opened = 0;
    for (; opened < count; opened++) {
      try {
        extraSessions.push(lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | (rw ? pkcs11.CKF_RW_SESSION : 0)));
      } catch (error) {
        if (error instanceof pkcs11.Pkcs11Error) return { opened, ckr: error.code };
        throw error;
      }
    }
    return { opened };
  },
  closeSession() {
    const last = extraSessions.pop();
    if (last) lib.C_CloseSession(last);
    return null;
  },
  closeAllSessions() {
    lib.C_CloseAllSessions(slot);
    extraSessions.length = 0;
    return null;
  },
  reinitialize() {
    lib.C_Finalize();
    extraSessions.length = 0;
    open();
    return null;
  },
  tokenInfo() {
    const info = lib.C_GetTokenInfo(slot);
    return { maxSessionCount: info.maxSessionCount, sessionCount: info.sessionCount, rwSessionCount: info.rwSessionCount };
  },
  info() {
    const info = lib.C_GetInfo();
    return { manufacturerID: info.manufacturerID, libraryDescription: info.libraryDescription };
  },
};

function run<K extends ProbeOp>(op: K, args: ProbeOps[K]['args']): ProbeOps[K]['result'] {
  return handlers[op](args);
}

function isRequest(message: unknown): message is { id: number; op: ProbeOp; args: never } {
  if (typeof message !== 'object' || message === null) return false;
  const { id, op } = message as { id?: unknown; op?: unknown };
  return typeof id === 'number' && typeof op === 'string' && op in handlers;
}

try {
  lib.load(process.argv[2]!);
  open();
} catch (error) {
  process.send!(`failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}

process.on('message', (message: unknown) => {
  if (!isRequest(message)) return;
  try {
    process.send!({ id: message.id, result: run(message.op, message.args) });
  } catch (error) {
    if (error instanceof pkcs11.Pkcs11Error) process.send!({ id: message.id, ckr: error.code, message: error.message });
    else process.send!({ id: message.id, error: error instanceof Error ? error.message : String(error) });
  }
});
process.send!('ready');
