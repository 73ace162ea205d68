import * as pkcs11 from 'pkcs11js';

/**
 * A slot's token label, or undefined when SoftHSM cannot read that token now: every test file makes
 * its token in the run's one token directory and removes it when it is done, so a process that
 * listed the slots before another file removed its token gets CKR_GENERAL_ERROR for that slot (as
 * it does, for a moment, for a token file another process is rewriting). Such a slot is not the one
 * looked for.
 */
export function tokenLabelOf(lib: pkcs11.PKCS11, slot: Buffer): string | undefined {
  try {
    return lib.C_GetTokenInfo(slot).label.replace(/\0+$/, '').trim();
  } catch (error) {
    if (error instanceof pkcs11.Pkcs11Error && error.code === pkcs11.CKR_GENERAL_ERROR) return undefined;
    throw error;
  }
}
