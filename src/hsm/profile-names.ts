/** The PKCS#11 module profiles the service knows (src/hsm/profiles.ts), for configuration. */
export const PROFILE_NAMES = ['generic', 'softhsm', 'nss'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export function isProfileName(value: string): value is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(value);
}
