import type { ImportDue, ImportRecord } from '../../domain/imports';
import type { ImportRepository, ReadOptions } from '../../domain/repositories';
import type { Executor } from './executor';

interface ImportRow {
  key_id: string;
  wrapping_expires_at: number | null;
  fingerprint: Buffer | null;
  imported: boolean;
  material_expires_at: number | null;
}

/** Imported keys' import state in PostgreSQL (migration 10); the semantics are ImportRepository's (src/domain/repositories.ts). */
export class PostgresImportRepository implements ImportRepository {
  constructor(private readonly db: Executor) {}

  async get(keyId: string, options: ReadOptions = {}): Promise<ImportRecord | undefined> {
    const { rows } = await this.db.query<ImportRow>(`SELECT * FROM key_imports WHERE key_id = $1${options.lock ? ' FOR UPDATE' : ''}`, [keyId]);
    const row = rows[0];
    return (
      row && {
        keyId: row.key_id,
        wrappingExpiresAt: row.wrapping_expires_at,
        fingerprint: row.fingerprint,
        imported: row.imported,
        materialExpiresAt: row.material_expires_at,
      }
    );
  }

  async put(record: ImportRecord): Promise<void> {
    // A key removed meanwhile has no row in keys: nothing is written.
    await this.db.query(
      `INSERT INTO key_imports (key_id, wrapping_expires_at, fingerprint, imported, material_expires_at)
       SELECT key_id, $2, $3, $4, $5 FROM keys WHERE key_id = $1
       ON CONFLICT (key_id) DO UPDATE SET wrapping_expires_at = excluded.wrapping_expires_at, fingerprint = excluded.fingerprint,
                                          imported = excluded.imported, material_expires_at = excluded.material_expires_at`,
      [record.keyId, record.wrappingExpiresAt, record.fingerprint, record.imported, record.materialExpiresAt],
    );
  }

  async wrappingExpired(now: number): Promise<ImportDue[]> {
    const { rows } = await this.db.query<{ key_id: string; project_id: string }>(
      'SELECT i.key_id, k.project_id FROM key_imports i JOIN keys k USING (key_id) WHERE i.wrapping_expires_at <= $1',
      [now],
    );
    return rows.map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }

  async materialExpired(now: number): Promise<ImportDue[]> {
    const { rows } = await this.db.query<{ key_id: string; project_id: string }>(
      `SELECT i.key_id, k.project_id FROM key_imports i JOIN keys k USING (key_id)
       WHERE i.material_expires_at <= $1 AND i.imported AND k.key_state IN ('2', '3')`,
      [now],
    );
    return rows.map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }
}
