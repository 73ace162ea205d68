import { mkdirSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AuditSink } from './audit/audit-sink';
import type { Config } from './config';
import type { StoreObserver } from './domain/coordination';
import type { MetadataStore } from './domain/repositories';
import type { HsmObserver } from './hsm/hsm-observer';
import { openHsm } from './hsm/open-hsm';
import type { Pkcs11Hsm } from './hsm/pkcs11-hsm';
import { ensureSystemKeys } from './hsm/system-keys';
import { CredentialService } from './identity/credentials';
import { systemClock, type Clock } from './kms/context';
import type { RotationObserver } from './kms/key-rotation';
import { keyServices, type KeyServices } from './kms/key-services';
import { openStore } from './store/open-store';

/**
 * The one composition root: config → HSM → store → services, for the service (src/server.ts), the
 * cluster's initialiser (the same file) and the command-line tool (src/cli/core.ts), so that all
 * three open the same things in the same order and apply the same rules.
 */

/** What every process of the service works with, opened from one config. */
export interface Core {
  readonly config: Config;
  readonly hsm: Pkcs11Hsm;
  readonly store: MetadataStore;
  /** The service's audit chain, when it asked for one (CoreOptions.audit). */
  readonly audit?: AuditSink;
  readonly credentials: CredentialService;
  readonly keys: KeyServices;
  /**
   * The same services over another view of the store: the command-line tool's audited changes
   * run them over a store whose repositories are one transaction's (src/store/in-transaction.ts).
   * The caller closes what it gets.
   */
  servicesOver(store: MetadataStore): { readonly credentials: CredentialService; readonly keys: KeyServices };
  /**
   * Closes the HSM first, then the audit chain, then the store. The HSM first: closing it waits for
   * the PKCS#11 calls still running (up to their deadline), whose operations still write to the
   * audit chain and the database when they come back.
   */
  close(): Promise<void>;
}

export interface CoreOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  /** How many HSM sessions to open; default config.hsmSessions (the initialiser and the tool need one). */
  readonly hsmSessions?: number;
  /** Told of every HSM operation (the metrics). */
  readonly hsmObserver?: HsmObserver;
  /** Told of every rotation (the metrics). */
  readonly rotationObserver?: RotationObserver;
  /** Told of the store's change feed and lease outcomes from its opening on (the metrics). */
  readonly storeObserver?: StoreObserver;
  /**
   * 'create' (the service, the initialiser): the data directory is made on the first start.
   * 'existing' (the command-line tool): a data directory that does not exist is refused before
   * anything is opened, so that a mistyped KMS_DATA_DIR makes no token, no database.
   */
  readonly dataDir: 'create' | 'existing';
  /** Opens the service's audit chain, right after the store (and closed right after the HSM); it checkpoints into the store. */
  readonly audit?: (store: MetadataStore) => AuditSink;
}

/**
 * Opens the HSM, the store and (when asked) the audit chain, makes sure of the system keys, and
 * builds the credential and key services over them. When a step fails, what the steps before it
 * opened is closed, in reverse order, and the step's error is thrown. Nothing here starts a timer:
 * seal counts are flushed, and sweeps run, only where the caller starts them.
 */
export function openCore(config: Config, options: CoreOptions & { readonly audit: (store: MetadataStore) => AuditSink }): Promise<Core & { readonly audit: AuditSink }>;
export function openCore(config: Config, options: CoreOptions): Promise<Core>;
export async function openCore(config: Config, options: CoreOptions): Promise<Core> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  if (options.dataDir === 'create') mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // openHsm would make it: the tool refuses instead (ENOENT names the directory).
  else statSync(config.dataDir);
  // Each step's closer, in the order opened: a failure closes them backwards.
  const opened: (() => Promise<void> | void)[] = [];
  try {
    const hsm = await openHsm(config, logger, options.hsmSessions ?? config.hsmSessions, options.hsmObserver);
    opened.push(() => hsm.close());
    const store = await openStore(config, { report: (problem, error) => logger.warn({ err: error }, problem) });
    opened.push(() => store.close());
    if (options.storeObserver) store.observe(options.storeObserver);
    const audit = options.audit?.(store);
    if (audit) opened.push(() => audit.close());
    // Sealing secret keys needs the credential-sealing key.
    await ensureSystemKeys(hsm);
    const servicesOver = (over: MetadataStore): { credentials: CredentialService; keys: KeyServices } => ({
      credentials: new CredentialService(over, hsm, clock),
      keys: keyServices({ store: over, hsm, clock, logger, config, rotationObserver: options.rotationObserver }),
    });
    const { credentials, keys } = servicesOver(store);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> =>
      (closing ??= (async () => {
        await hsm.close();
        try {
          await audit?.close();
        } finally {
          keys.close();
          credentials.close();
          await store.close();
        }
      })());
    return { config, hsm, store, audit, credentials, keys, servicesOver, close };
  } catch (error) {
    for (const close of opened.reverse()) {
      try {
        await close();
      } catch (closeError) {
        // The step's own error is the one to report: this one is only logged.
        logger.error({ err: closeError }, 'could not close what was opened before a failed start');
      }
    }
    throw error;
  }
}
