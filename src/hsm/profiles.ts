import type * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { ProfileName } from './profile-names';

/**
 * What differs between PKCS#11 implementations where the service depends on it, as capabilities of
 * a profile (the xks-proxy way: vendor quirks are configuration, not code paths). Chosen by
 * KMS_PKCS11_PROFILE, or detected from C_GetInfo for the modules we know.
 */
export interface Pkcs11Profile {
  readonly name: ProfileName;
  /**
   * What C_Decrypt, and that call only, answers for a GCM tag that does not verify: the caller's
   * bad ciphertext (400 KMS.2201). The same codes from any other call (C_FindObjects,
   * C_DecryptInit, ...) are faults of the device, not of the ciphertext.
   */
  readonly badTagCodes: ReadonlySet<number>;
}

// PKCS#11 3.0's code for a failed AEAD decryption; pkcs11js (2.40) does not name it.
const CKR_AEAD_DECRYPT_FAILED = 0x35;
/** What the standard has a module answer: 2.40's code, 3.0's, and an input too short to hold a tag. */
const STANDARD_BAD_TAG = [pkcs11.CKR_ENCRYPTED_DATA_INVALID, CKR_AEAD_DECRYPT_FAILED, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE];

const PROFILES: Readonly<Record<ProfileName, Pkcs11Profile>> = {
  generic: { name: 'generic', badTagCodes: new Set(STANDARD_BAD_TAG) },
  // SoftHSMv2 2.6 answers a tag that does not verify with CKR_GENERAL_ERROR.
  softhsm: { name: 'softhsm', badTagCodes: new Set([...STANDARD_BAD_TAG, pkcs11.CKR_GENERAL_ERROR]) },
  // NSS's softoken (3.87) answers CKR_ENCRYPTED_DATA_INVALID, as the standard has it.
  nss: { name: 'nss', badTagCodes: new Set(STANDARD_BAD_TAG) },
};

/** The profile configured (`auto`: detected from the module's C_GetInfo; unknown modules are generic). */
export function profileFor(configured: ProfileName | 'auto', module: graphene.Module): Pkcs11Profile {
  return PROFILES[configured === 'auto' ? detectProfile(module.manufacturerID, module.libraryDescription) : configured];
}

export function detectProfile(manufacturer: string, description: string): ProfileName {
  if (/softhsm/i.test(manufacturer) || /softhsm/i.test(description)) return 'softhsm';
  if (/mozilla/i.test(manufacturer) && /nss/i.test(description)) return 'nss';
  return 'generic';
}
