import pino from 'pino';
import type { Config } from '../config';
import type { MetadataStore } from '../domain/repositories';
import type { Hsm } from '../hsm/hsm';
import type { CredentialService } from '../identity/credentials';
import type { KeyServices } from '../kms/key-services';
import { openCore } from '../open-core';
import { cliChain, type CliChain } from './cli-audit';

/** What a command works with: the service's store, HSM and services, and the tool's audit chain. */
export interface CliCore {
  readonly config: Config;
  readonly store: MetadataStore;
  /** The same services over another view of the store (Core.servicesOver): for audited changes (cli-audit.ts). */
  servicesOver(store: MetadataStore): { readonly credentials: CredentialService; readonly keys: KeyServices };
  readonly hsm: Hsm;
  readonly credentials: CredentialService;
  readonly keys: KeyServices;
  /** audit-cli.log of the data directory. */
  readonly chain: CliChain;
}

/**
 * Opens the data directory's HSM and database beside a running service (src/open-core.ts), runs
 * `work`, and closes both. The database is shared in WAL mode, and the service's caches notice this
 * process's commits (the store's change feed); the HSM is opened with one session, since the service may hold
 * the others. A data directory that does not exist is refused, not made.
 */
export async function withCore<T>(config: Config, work: (core: CliCore) => Promise<T> | T): Promise<T> {
  const logger = pino({ level: 'warn', base: { service: 'kms-cli' } }, pino.destination(2));
  const core = await openCore(config, { logger, dataDir: 'existing', hsmSessions: 1 });
  try {
    const { hsm, credentials, keys, store, servicesOver } = core;
    return await work({ config, store, servicesOver, hsm, credentials, keys, chain: cliChain(config) });
  } finally {
    await core.close();
  }
}
