/**
 * SQLite error codes, read by shape, not instanceof: the native addon keeps the SqliteError class of
 * its first loader, which is not the one a second module registry (Jest gives one per test file)
 * sees, so `instanceof Database.SqliteError` can be false for a real SqliteError.
 */
export function sqliteCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code } = error as { code?: unknown };
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** SQLITE_BUSY and its extended forms (e.g. SQLITE_BUSY_RECOVERY): another connection holds the lock. */
export function isSqliteBusy(error: unknown): boolean {
  return sqliteCode(error)?.startsWith('SQLITE_BUSY') ?? false;
}
