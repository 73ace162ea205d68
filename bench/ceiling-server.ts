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
import { createServer } from 'node:http';
import { benchEnv as env, ceilingAnswer, openCeilingSession, serveCeiling } from './ceiling-answer';

const ceiling = openCeilingSession();
const keyId = env('BENCH_KEY_LABEL').split('/')[1]!;

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    // /v1.0/{project_id}/kms/create-datakey: the project is bound into the additional data.
    const body = ceilingAnswer(ceiling, keyId, req.url!.split('/')[2]!);
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
});
serveCeiling(server, ceiling);
