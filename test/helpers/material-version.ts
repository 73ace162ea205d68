import Database from 'better-sqlite3';
import type { TestService } from './service';

/**
 * Gives a key material version 1, as a rotation leaves it, behind the service's back (the API has
 * no rotation yet): the HSM object, its record, and the key's current version. New ciphertexts are
 * then sealed under version 1; version 0's blobs still open.
 */
export async function addMaterialVersion(t: TestService, keyId: string): Promise<void> {
  await t.service.hsm.generateKey({ keyId, version: 1 });
  const db = new Database(t.config.databasePath);
  try {
    db.prepare('INSERT INTO key_materials (key_id, version, created_at) VALUES (?, 1, ?)').run(keyId, Date.now());
    db.prepare('UPDATE keys SET material_version = 1 WHERE key_id = ?').run(keyId);
  } finally {
    db.close();
  }
}

/** The key material version a blob of this service carries (the u32 after the key id; blob-frame.ts). */
export function blobMaterialVersion(bytes: Buffer): number {
  return bytes.readUInt32LE(bytes.readUInt16LE(2));
}
