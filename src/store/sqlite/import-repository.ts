import type { ImportDue, ImportRecord } from '../../domain/imports';
import type { ImportRepository, ReadOptions } from '../../domain/repositories';
import type { SqliteSession } from './session';

interface ImportRow {
  key_id: string;
  wrapping_expires_at: number | null;
  fingerprint: Buffer | null;
  imported: number;
  material_expires_at: number | null;
}

/** Imported keys' import state (migration 10); the semantics are ImportRepository's (src/domain/repositories.ts). */
export class SqliteImportRepository implements ImportRepository {
  private readonly statements;

  constructor(private readonly session: SqliteSession) {
    const { db } = session;
    this.statements = {
      get: db.prepare<[string], ImportRow>('SELECT * FROM key_imports WHERE key_id = ?'),
      // A key removed meanwhile has no row in keys: nothing is written.
      put: db.prepare(
        `INSERT INTO key_imports (key_id, wrapping_expires_at, fingerprint, imported, material_expires_at)
         SELECT key_id, @wrappingExpiresAt, @fingerprint, @imported, @materialExpiresAt FROM keys WHERE key_id = @keyId
         ON CONFLICT (key_id) DO UPDATE SET wrapping_expires_at = excluded.wrapping_expires_at, fingerprint = excluded.fingerprint,
                                            imported = excluded.imported, material_expires_at = excluded.material_expires_at`,
      ),
      wrappingExpired: db.prepare<[number], { key_id: string; project_id: string }>(
        'SELECT i.key_id, k.project_id FROM key_imports i JOIN keys k USING (key_id) WHERE i.wrapping_expires_at <= ?',
      ),
      materialExpired: db.prepare<[number], { key_id: string; project_id: string }>(
        `SELECT i.key_id, k.project_id FROM key_imports i JOIN keys k USING (key_id)
         WHERE i.material_expires_at <= ? AND i.imported = 1 AND k.key_state IN ('2', '3')`,
      ),
    };
  }

  // SQLite's transactions (BEGIN IMMEDIATE) exclude every other writer already: `lock` needs nothing more.
  async get(keyId: string, _options?: ReadOptions): Promise<ImportRecord | undefined> {
    const row = this.statements.get.get(keyId);
    return (
      row && {
        keyId: row.key_id,
        wrappingExpiresAt: row.wrapping_expires_at,
        fingerprint: row.fingerprint,
        imported: row.imported === 1,
        materialExpiresAt: row.material_expires_at,
      }
    );
  }

  async put(record: ImportRecord): Promise<void> {
    await this.session.atomic(() => this.statements.put.run({ ...record, imported: record.imported ? 1 : 0 }));
  }

  async wrappingExpired(now: number): Promise<ImportDue[]> {
    return this.statements.wrappingExpired.all(now).map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }

  async materialExpired(now: number): Promise<ImportDue[]> {
    return this.statements.materialExpired.all(now).map((row) => ({ keyId: row.key_id, projectId: row.project_id }));
  }
}
