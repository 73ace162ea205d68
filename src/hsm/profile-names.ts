/** The PKCS#11 module profiles the service knows (src/hsm/profiles.ts), for configuration. */
export const PROFILE_NAMES = ['generic', 'softhsm', 'nss'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export function isProfileName(value: string): value is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(value);
}

/**
 * Who makes the AES-GCM IV of an encryption:
 * - `caller`: the service, from the HSM's random generator, passed in CK_GCM_PARAMS (SoftHSM, NSS);
 * - `token-params`: the HSM, which refuses a caller's IV and writes its own into the zeroed pIv
 *   buffer of CK_GCM_PARAMS during C_EncryptInit (FIPS-mode HSMs such as Thales Luna);
 * - `token-output`: the HSM, which refuses a caller's IV and returns its own in front of the
 *   ciphertext from C_Encrypt.
 */
export const GCM_IV_SOURCES = ['caller', 'token-params', 'token-output'] as const;
export type GcmIvSource = (typeof GCM_IV_SOURCES)[number];

/** How encrypt and decrypt are called: on libuv worker threads (a network HSM) or inline (an in-process module). */
export const CRYPTO_CALL_MODES = ['async', 'sync'] as const;
export type CryptoCallMode = (typeof CRYPTO_CALL_MODES)[number];

/** A capability chosen by configuration, or `auto`: the profile's. */
export type Configured<T> = T | 'auto';

/** Capabilities configured one by one, over the profile's (KMS_PKCS11_GCM_IV, ...). */
export interface CapabilityOverrides {
  readonly gcmIv: Configured<GcmIvSource>;
  readonly cryptoCalls: Configured<CryptoCallMode>;
}

export const NO_OVERRIDES: CapabilityOverrides = { gcmIv: 'auto', cryptoCalls: 'auto' };
