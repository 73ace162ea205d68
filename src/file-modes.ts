import { closeSync, openSync, statSync } from 'node:fs';
import type { Logger } from 'pino';

/**
 * Who may read what the service keeps: only its own user. The data directory holds sealed secret
 * keys, token hashes, the token's PIN and objects, the audit trail and key, grant and credential
 * metadata, so every file the service creates there is 0600 and every directory 0700.
 *
 * Two layers: the places that create a file or directory give the mode explicitly, and the
 * processes (the service, the command-line tool) set a umask of 0o077 first thing, which covers a
 * file created without one (SQLite's journals before their database file existed, a file a library
 * creates). SoftHSM gives its token's files 0600 and directories 0700 itself, whatever the umask.
 */

/** The umask of every process of the service: nothing it creates is open to group or others. */
export const PRIVATE_UMASK = 0o077;

/** Called first thing by the service's and the command-line tool's entry points (main.ts, cli.ts). */
export function restrictUmask(): void {
  process.umask(PRIVATE_UMASK);
}

/**
 * Creates `file` empty with mode 0600 unless it exists (then it is left as it is). For SQLite files:
 * SQLite gives a database file it creates 0644 less the umask, but opens an existing empty file as
 * a new database, and gives its -journal, -wal and -shm the mode of the database file.
 */
export function createPrivateFile(file: string): void {
  closeSync(openSync(file, 'a', 0o600));
}

/**
 * At start: a data directory that group or others may enter or read exposes whatever file in it is
 * not 0600 (one made by an older version, or copied in); the service does not change the mode of a
 * directory it did not create (it may be a mount point the operator chose), it says so and how to fix it.
 * Returns whether it warned.
 */
export function warnIfDataDirectoryOpen(dataDir: string, logger: Logger): boolean {
  const mode = statSync(dataDir).mode & 0o777;
  if ((mode & 0o077) === 0) return false;
  logger.warn(
    { dataDir, mode: `0${mode.toString(8)}`, fix: `chmod 700 ${dataDir}` },
    `the data directory ${dataDir} can be read by other local users (mode 0${mode.toString(8)}): run chmod 700 ${dataDir}`,
  );
  return true;
}
