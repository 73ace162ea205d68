import type Database from 'better-sqlite3';
import pino from 'pino';
import { cliAuditLogFile } from '../audit/audit-log';
import type { Config } from '../config';
import { openHsm } from '../hsm/open-hsm';
import type { Hsm } from '../hsm/hsm';
import { ensureSystemKeys } from '../hsm/system-keys';
import { CredentialService } from '../identity/credentials';
import { systemClock } from '../kms/context';
import { keyServices, type KeyServices } from '../kms/key-services';
import { ChangeWatch } from '../store/change-watch';
import { CredentialStore } from '../store/credential-store';
import { openDatabase } from '../store/database';

/** What a command works with: the service's database, HSM and services, and the tool's audit chain. */
export interface CliCore {
  readonly config: Config;
  readonly db: Database.Database;
  readonly hsm: Hsm;
  readonly credentials: CredentialService;
  readonly keys: KeyServices;
  /** audit-cli.log of the data directory. */
  readonly chainFile: string;
}

/**
 * Opens the data directory's database and the HSM beside a running service, runs `work`, and
 * closes both. The database is shared in WAL mode, and the service's caches notice this process's
 * commits (ChangeWatch); the HSM is opened with one session, since the service may hold the others.
 */
export async function withCore<T>(config: Config, work: (core: CliCore) => Promise<T> | T): Promise<T> {
  const logger = pino({ level: 'warn', base: { service: 'kms-cli' } }, pino.destination(2));
  const db = openDatabase(config.databasePath);
  try {
    const hsm = await openHsm(config, logger, 1);
    try {
      // Sealing secret keys needs the credential-sealing key.
      await ensureSystemKeys(hsm);
      const changes = new ChangeWatch(db);
      const credentials = new CredentialService(new CredentialStore(db, changes), hsm, systemClock);
      const keys = keyServices({ db, changes, hsm, clock: systemClock, logger, config });
      return await work({ config, db, hsm, credentials, keys, chainFile: cliAuditLogFile(config.dataDir) });
    } finally {
      await hsm.close();
    }
  } finally {
    db.close();
  }
}
