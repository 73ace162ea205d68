/**
 * The ceiling of issue 19's operations: the least a server can do to answer sign (RSA-2048 PSS and
 * ECDSA P-256), verify (ECDSA P-256) and generate-mac (HMAC-SHA-256) on this HSM. Plain node:http,
 * one logged-in PKCS#11 session, each key's handle found once, and per request exactly the work a
 * correct answer needs: the body parsed, the message (and signature) decoded from base64, one
 * C_SignInit/C_Sign or C_VerifyInit/C_Verify with the mechanism the service gives SoftHSM for a
 * DIGEST message (CKM_RSA_PKCS_PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt; CKM_ECDSA on the
 * digest, the signature turned to DER and back as the API has it; CKM_SHA256_HMAC), and the
 * service's JSON. No validation, authentication, audit or key lookup: the operation is the last
 * segment of the path, the key the one the algorithm needs. Its answers are real: the benchmark
 * checks them against the service before it measures anything (bench/signing-rows.ts).
 *
 * Environment: SOFTHSM2_CONF, BENCH_MODULE, BENCH_TOKEN_LABEL, BENCH_PIN_FILE, PORT, and the labels
 * (kms/<key id>/v0) of the three keys: BENCH_RSA_LABEL, BENCH_EC_LABEL, BENCH_HMAC_LABEL.
 */
import { createServer } from 'node:http';
import * as pkcs11 from 'pkcs11js';
import { ecdsaFromDer, ecdsaToDer } from '../src/hsm/roles/ecdsa-der';
import { benchEnv as env, findKeyObject, openTokenSession, serveCeiling } from './ceiling-answer';

const token = openTokenSession();
const { lib, session } = token;
const keyIdOf = (label: string): string => label.split('/')[1]!;
const rsa = { id: keyIdOf(env('BENCH_RSA_LABEL')), private: findKeyObject(token, pkcs11.CKO_PRIVATE_KEY, env('BENCH_RSA_LABEL')) };
const ecLabel = env('BENCH_EC_LABEL');
const ec = { id: keyIdOf(ecLabel), private: findKeyObject(token, pkcs11.CKO_PRIVATE_KEY, ecLabel), public: findKeyObject(token, pkcs11.CKO_PUBLIC_KEY, ecLabel) };
const hmac = { id: keyIdOf(env('BENCH_HMAC_LABEL')), secret: findKeyObject(token, pkcs11.CKO_SECRET_KEY, env('BENCH_HMAC_LABEL')) };

const PSS_PARAMETER: pkcs11.RsaPSS = { type: pkcs11.CK_PARAMS_RSA_PSS, hashAlg: pkcs11.CKM_SHA256, mgf: pkcs11.CKG_MGF1_SHA256, saltLen: 32 };
const PSS_SHA_256: pkcs11.Mechanism = { mechanism: pkcs11.CKM_RSA_PKCS_PSS, parameter: PSS_PARAMETER };
/** P-256's r and s are 32 bytes each. */
const P256_BYTES = 32;

interface Body {
  readonly message: string;
  readonly signing_algorithm?: string;
  readonly signature?: string;
}

function sign(body: Body): string {
  const digest = Buffer.from(body.message, 'base64');
  const out = Buffer.alloc(256);
  if (body.signing_algorithm === 'RSASSA_PSS_SHA_256') {
    lib.C_SignInit(session, PSS_SHA_256, rsa.private);
    return JSON.stringify({ key_id: rsa.id, signature: lib.C_Sign(session, digest, out).toString('base64') });
  }
  lib.C_SignInit(session, { mechanism: pkcs11.CKM_ECDSA }, ec.private);
  return JSON.stringify({ key_id: ec.id, signature: ecdsaToDer(lib.C_Sign(session, digest, out)).toString('base64') });
}

function verify(body: Body): string {
  const digest = Buffer.from(body.message, 'base64');
  const raw = ecdsaFromDer(Buffer.from(body.signature ?? '', 'base64'), P256_BYTES);
  let valid = false;
  if (raw) {
    lib.C_VerifyInit(session, { mechanism: pkcs11.CKM_ECDSA }, ec.public);
    try {
      valid = lib.C_Verify(session, digest, raw);
    } catch (error) {
      if (!(error instanceof pkcs11.Pkcs11Error && error.code === pkcs11.CKR_SIGNATURE_INVALID)) throw error;
    }
  }
  return JSON.stringify({ key_id: ec.id, signature_valid: valid ? 'true' : 'false' });
}

function generateMac(body: Body): string {
  lib.C_SignInit(session, { mechanism: pkcs11.CKM_SHA256_HMAC }, hmac.secret);
  const mac = lib.C_Sign(session, Buffer.from(body.message, 'base64'), Buffer.alloc(32));
  return JSON.stringify({ key_id: hmac.id, mac_algorithm: 'HMAC_SHA_256', mac: mac.toString('hex').toUpperCase() });
}

const ANSWERS: ReadonlyMap<string, (body: Body) => string> = new Map([
  ['sign', sign],
  ['verify', verify],
  ['generate-mac', generateMac],
]);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const answer = ANSWERS.get(req.url!.slice(req.url!.lastIndexOf('/') + 1));
    if (!answer) {
      res.writeHead(404).end();
      return;
    }
    const body = answer(JSON.parse(Buffer.concat(chunks).toString()) as Body);
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
});
serveCeiling(server, token);
