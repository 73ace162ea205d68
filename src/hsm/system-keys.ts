import type { Hsm, MaterialRef } from './hsm';

/**
 * Keys the service keeps in the token for itself, beside the CMKs. Their ids are reserved: CMK ids
 * are random version-4 UUIDs and never begin with eight zeros, so no API call can name these keys
 * (they have no key record either).
 */
const SYSTEM_PREFIX = '00000000-0000-0000-0000-';

/** Seals the secret keys of AK/SK credentials. */
export const CREDENTIAL_SEALING_KEY: MaterialRef = Object.freeze({ keyId: `${SYSTEM_PREFIX}000000000001`, version: 0 });

/** Seals the import tokens of key material imports (src/kms/import-token.ts). */
export const IMPORT_TOKEN_KEY: MaterialRef = Object.freeze({ keyId: `${SYSTEM_PREFIX}000000000002`, version: 0 });

export function isSystemKey(keyId: string): boolean {
  return keyId.startsWith(SYSTEM_PREFIX);
}

/**
 * Creates the system keys that are missing. The service and the command-line tool may both start
 * on a fresh data directory at once: generateKey keeps a key that is already there, and the token
 * lock lets one process at a time look and create, so the token never holds two keys with one id.
 */
export async function ensureSystemKeys(hsm: Hsm): Promise<void> {
  await hsm.generateKey(CREDENTIAL_SEALING_KEY);
  await hsm.generateKey(IMPORT_TOKEN_KEY);
}
