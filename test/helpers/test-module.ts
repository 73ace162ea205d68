import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import * as pkcs11 from 'pkcs11js';
import { DEFAULT_SOFTHSM_MODULE } from '../../src/config';
import { createTokenIfMissing } from '../../src/hsm/token-setup';
import { builtFipsShim } from './shim-service';

/**
 * The PKCS#11 module a test file runs on, chosen for the whole Jest project by KMS_TEST_PKCS11
 * (jest.config.js runs the HSM and API suites once per module):
 * - `softhsm` (the default): the service's embedded SoftHSMv2, a token under the test's label in
 *   the run's token directory (global-setup.ts);
 * - `nss`: NSS's softoken (Debian's libnss3), an independent implementation, configured as any
 *   vendor's module would be: module path, token label, PIN and KMS_PKCS11_INIT_ARGS;
 * - `fips`: a FIPS-style HSM, the shim's FIPS build (bench/shim: it refuses the caller's GCM IV and
 *   writes its own into the parameters, answers a bad tag with the standard's code, and names a
 *   vendor the service has no profile for) over a SoftHSM token, configured by capability alone
 *   (KMS_PKCS11_GCM_IV=token-params).
 */
export type TestModuleKind = 'softhsm' | 'nss' | 'fips';

/** Debian's libnss3 keeps it in the multiarch library directory (hsm/ensure-softhsm.sh --with-nss installs it). */
export const NSS_SOFTOKEN = ['/usr/lib/x86_64-linux-gnu/libsoftokn3.so', '/usr/lib/aarch64-linux-gnu/libsoftokn3.so'].find((file) => existsSync(file)) ?? '/usr/lib/x86_64-linux-gnu/libsoftokn3.so';
/** The slot of NSS's softoken that keeps token objects (slot 1 holds only session crypto). */
export const NSS_TOKEN_LABEL = 'NSS Certificate DB';

export function testModuleKind(): TestModuleKind {
  const kind = process.env.KMS_TEST_PKCS11 ?? 'softhsm';
  if (kind !== 'softhsm' && kind !== 'nss' && kind !== 'fips') throw new Error(`KMS_TEST_PKCS11 must be softhsm, nss or fips, got ${kind}`);
  return kind;
}

/** NSS's initialisation string for a database in `dir`. */
export function nssInitArgs(dir: string): string {
  return `configdir='sql:${dir}' certPrefix='' keyPrefix='' secmod='secmod.db' flags=`;
}

/**
 * The service's environment for a fresh token of the test module under `dataDir`: nothing for the
 * embedded SoftHSM (the service makes the token), or a new NSS database whose user PIN has been set
 * as NSS wants it for a new database (an SO login with the empty PIN, then C_InitPIN).
 */
export function freshTokenEnv(dataDir: string, softHsmLabel: string): Record<string, string> {
  const kind = testModuleKind();
  if (kind === 'softhsm') return { KMS_PKCS11_TOKEN_LABEL: softHsmLabel };
  if (kind === 'fips') return fipsTokenEnv(softHsmLabel);
  const dbDir = path.join(dataDir, 'nssdb');
  mkdirSync(dbDir, { recursive: true, mode: 0o700 });
  const pin = randomBytes(12).toString('hex');
  const initArgs = nssInitArgs(dbDir);
  const lib = new pkcs11.PKCS11();
  lib.load(NSS_SOFTOKEN);
  lib.C_Initialize({ libraryParameters: initArgs, flags: pkcs11.CKF_OS_LOCKING_OK });
  try {
    const slot = lib.C_GetSlotList(true).find((candidate) => lib.C_GetTokenInfo(candidate).label.trim() === NSS_TOKEN_LABEL);
    if (!slot) throw new Error('NSS softoken shows no certificate database token');
    const session = lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION);
    try {
      lib.C_Login(session, pkcs11.CKU_SO, '');
      lib.C_InitPIN(session, pin);
      lib.C_Logout(session);
    } finally {
      lib.C_CloseSession(session);
    }
  } finally {
    lib.C_Finalize();
    lib.close();
  }
  return { KMS_PKCS11_MODULE: NSS_SOFTOKEN, KMS_PKCS11_TOKEN_LABEL: NSS_TOKEN_LABEL, KMS_PKCS11_PIN: pin, KMS_PKCS11_INIT_ARGS: initArgs };
}

/** A new SoftHSM token in the run's token directory (global-setup.ts), reached through the shim's FIPS-style build. */
function fipsTokenEnv(label: string): Record<string, string> {
  const pin = randomBytes(12).toString('hex');
  createTokenIfMissing({ modulePath: DEFAULT_SOFTHSM_MODULE, tokenLabel: label, pin, logger: pino({ level: 'silent' }) });
  return { KMS_PKCS11_MODULE: builtFipsShim(), KMS_PKCS11_TOKEN_LABEL: label, KMS_PKCS11_PIN: pin, KMS_PKCS11_GCM_IV: 'token-params' };
}
