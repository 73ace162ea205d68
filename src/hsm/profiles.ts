import * as pkcs11 from 'pkcs11js';
import type { CapabilityOverrides, CryptoCallMode, GcmIvSource, ProfileName } from './profile-names';

/**
 * What differs between PKCS#11 implementations where the service depends on it, as capabilities of
 * a profile (the xks-proxy way: vendor quirks are configuration, not code paths). The profile is
 * chosen by KMS_PKCS11_PROFILE, or detected from C_GetInfo for the modules we know; each capability
 * can then be set on its own (a vendor's module we have no profile for is configured, not coded).
 */
export interface Pkcs11Profile {
  readonly name: ProfileName;
  /**
   * What C_Decrypt, and that call only, answers for a GCM tag that does not verify: the caller's
   * bad ciphertext (400 KMS.2201). The same codes from any other call (C_FindObjects,
   * C_DecryptInit, ...) are faults of the device, not of the ciphertext.
   */
  readonly badTagCodes: ReadonlySet<number>;
  /** Who makes the GCM IV of an encryption (see {@link GcmIvSource}). */
  readonly gcmIv: GcmIvSource;
  /**
   * `sync` for modules that run inside this process and answer in microseconds (the libuv thread
   * hop costs more than the call: measured with SoftHSM, 28 µs against 56 µs per encryption);
   * `async` for any other, whose round trip must never block the event loop.
   */
  readonly cryptoCalls: CryptoCallMode;
}

// PKCS#11 3.0's code for a failed AEAD decryption; pkcs11js (2.40) does not name it.
const CKR_AEAD_DECRYPT_FAILED = 0x35;
/** What the standard has a module answer: 2.40's code, 3.0's, and an input too short to hold a tag. */
const STANDARD_BAD_TAG = [pkcs11.CKR_ENCRYPTED_DATA_INVALID, CKR_AEAD_DECRYPT_FAILED, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE];

const PROFILES: Readonly<Record<ProfileName, Pkcs11Profile>> = {
  // A module we know nothing of: the standard's answers, a caller IV in the v2.40 layout (what
  // most modules read), and calls off the event loop, since it may well be across a network.
  generic: { name: 'generic', badTagCodes: new Set(STANDARD_BAD_TAG), gcmIv: 'caller', cryptoCalls: 'async' },
  // SoftHSMv2 2.6 answers a tag that does not verify with CKR_GENERAL_ERROR.
  softhsm: {
    name: 'softhsm',
    badTagCodes: new Set([...STANDARD_BAD_TAG, pkcs11.CKR_GENERAL_ERROR]),
    gcmIv: 'caller',
    cryptoCalls: 'sync',
  },
  // NSS's softoken (3.87) answers CKR_ENCRYPTED_DATA_INVALID, as the standard has it.
  nss: { name: 'nss', badTagCodes: new Set(STANDARD_BAD_TAG), gcmIv: 'caller', cryptoCalls: 'sync' },
};

/** What C_GetInfo says about the module, for detection. */
export interface ModuleIdentity {
  readonly manufacturerID: string;
  readonly libraryDescription: string;
}

/**
 * The profile configured (`auto`: detected from the module's C_GetInfo; unknown modules are
 * generic), with each capability set by configuration replacing the profile's.
 */
export function profileFor(configured: ProfileName | 'auto', module: ModuleIdentity, overrides: CapabilityOverrides): Pkcs11Profile {
  const base = PROFILES[configured === 'auto' ? detectProfile(module.manufacturerID, module.libraryDescription) : configured];
  return {
    ...base,
    gcmIv: overrides.gcmIv === 'auto' ? base.gcmIv : overrides.gcmIv,
    cryptoCalls: overrides.cryptoCalls === 'auto' ? base.cryptoCalls : overrides.cryptoCalls,
  };
}

export function detectProfile(manufacturer: string, description: string): ProfileName {
  if (/softhsm/i.test(manufacturer) || /softhsm/i.test(description)) return 'softhsm';
  if (/mozilla/i.test(manufacturer) && /nss/i.test(description)) return 'nss';
  return 'generic';
}
