/**
 * The ceiling: the least a server can do to answer create-datakey on this HSM. Plain node:http,
 * one logged-in PKCS#11 session, the CMK's handle found once, and per request exactly the work a
 * correct create-datakey answer needs: random bytes for the data key and the IV, one AES-256-GCM
 * encryption under the additional data the service binds (binding.ts: purpose, key, version,
 * project), and the service's blob (blob-codec.ts: the Huawei-style frame with its SHA-256
 * trailer), with raw pkcs11js calls, synchronously. No validation, authentication, audit or key
 * lookup. Its answers are real: the benchmark checks that the service opens a data key the ceiling
 * made (decrypt-datakey) before it measures anything, so the two are compared on the same work.
 *
 * Environment: SOFTHSM2_CONF, BENCH_MODULE, BENCH_TOKEN_LABEL, BENCH_PIN_FILE, BENCH_KEY_LABEL, PORT.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import * as pkcs11 from 'pkcs11js';
import { benchEnv as env, ceilingAnswer } from './ceiling-answer';

const lib = new pkcs11.PKCS11();
lib.load(env('BENCH_MODULE'));
lib.C_Initialize({ flags: pkcs11.CKF_OS_LOCKING_OK });
const label = env('BENCH_TOKEN_LABEL');
const slot = lib.C_GetSlotList(true).find((candidate) => lib.C_GetTokenInfo(candidate).label.replace(/\0+$/, '').trim() === label);
if (!slot) throw new Error(`no token ${label}`);
const session = lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
lib.C_Login(session, pkcs11.CKU_USER, readFileSync(env('BENCH_PIN_FILE'), 'utf8').trim());
lib.C_FindObjectsInit(session, [
  { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
  { type: pkcs11.CKA_LABEL, value: env('BENCH_KEY_LABEL') },
]);
const [key] = lib.C_FindObjects(session, 1);
lib.C_FindObjectsFinal(session);
if (!key) throw new Error(`no key ${env('BENCH_KEY_LABEL')}`);
const keyId = env('BENCH_KEY_LABEL').split('/')[1]!;

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    // /v1.0/{project_id}/kms/create-datakey: the project is bound into the additional data.
    const body = ceilingAnswer(lib, session, key, keyId, req.url!.split('/')[2]!);
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
});
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
