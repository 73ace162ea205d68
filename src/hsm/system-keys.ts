import type Database from 'better-sqlite3';
import type { Hsm, MaterialRef } from './hsm';

/**
 * Keys the service keeps in the token for itself, beside the CMKs. Their ids are reserved: CMK ids
 * are random version-4 UUIDs and never begin with eight zeros, so no API call can name these keys
 * (they have no key record either).
 */
const SYSTEM_PREFIX = '00000000-0000-0000-0000-';

/** Seals the secret keys of AK/SK credentials. */
export const CREDENTIAL_SEALING_KEY: MaterialRef = Object.freeze({ keyId: `${SYSTEM_PREFIX}000000000001`, version: 0 });

export function isSystemKey(keyId: string): boolean {
  return keyId.startsWith(SYSTEM_PREFIX);
}

/**
 * Creates the system keys that are missing. The service and the command-line tool may both start
 * on a fresh data directory at once: the database's write lock makes one of them create the key
 * and the other find it, so the token never holds two keys with the same id.
 */
export async function ensureSystemKeys(hsm: Hsm, db: Database.Database): Promise<void> {
  db.exec('BEGIN IMMEDIATE');
  try {
    if (!(await hsm.hasKey(CREDENTIAL_SEALING_KEY))) await hsm.generateKey(CREDENTIAL_SEALING_KEY);
  } finally {
    db.exec('COMMIT');
  }
}
