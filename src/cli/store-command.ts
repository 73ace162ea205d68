import { existsSync } from 'node:fs';
import { ConfigError, postgresDatabaseConfig, type Config, type PostgresDatabaseConfig } from '../config';
import { COPIED_TABLES, copyToPostgres } from '../store/copy-to-postgres';
import { openStore } from '../store/open-store';
import { auditedStoreCopy, cliChain } from './cli-audit';
import { parseCommandLine } from './command-line';
import { print } from './output';
import { UsageError } from './usage';

/**
 * `kms store copy --to postgres://…`: the data directory's embedded store copied into an empty
 * PostgreSQL database (src/store/copy-to-postgres.ts). The target's password comes from the URL or
 * KMS_DATABASE_PASSWORD_FILE, its CA from KMS_DATABASE_CA_FILE, as the service's would. Needs no HSM:
 * sealed secrets are copied sealed. Recorded in audit-cli.log (a `store-copy` record, synced
 * before the copy commits), under the chain's lock in the configured store, as the tool's other
 * changes are.
 */
export function storeCommandLine(verb: string, args: readonly string[]): (config: Config) => Promise<void> {
  if (verb !== 'copy') throw new UsageError(`unknown store command: ${verb}`, ['store']);
  const line = parseCommandLine(args, { strings: ['to'] }, ['store', 'copy']);
  const to = line.strings.get('to');
  if (to === undefined) throw new UsageError('--to names the PostgreSQL database to copy into: --to postgres://user@host:5432/database', ['store', 'copy']);
  let target: PostgresDatabaseConfig;
  try {
    target = postgresDatabaseConfig(to);
  } catch (error) {
    // The messages name the setting the URL usually comes from; here it came from --to.
    if (error instanceof ConfigError) throw new UsageError(error.message.replaceAll('KMS_DATABASE_URL', '--to'), ['store', 'copy']);
    throw error;
  }
  return async (config) => {
    // Before the store is opened for the chain's lock: opening it would make an empty one.
    if (!existsSync(config.databasePath)) throw new Error(`no embedded store at ${config.databasePath}: nothing to copy`);
    const store = await openStore(config);
    const copied = await auditedStoreCopy(store, cliChain(config), (record) => copyToPostgres(config.databasePath, target, (rows) => record({ to: target.url, rows }))).finally(() =>
      store.close(),
    );
    // The URL as the config keeps it: without its password.
    print(line.format, { to: target.url, copied }, () => ({ columns: ['TABLE', 'ROWS'], rows: COPIED_TABLES.map((table) => [table, copied[table]]) }));
  };
}
