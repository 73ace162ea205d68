import type { Logger } from 'pino';
import { isWrappingKey, WRAPPING_KEY_VERSION, type Hsm } from '../hsm/hsm';
import { isSystemKey } from '../hsm/system-keys';
import { isDestroyed, type KeyRecord } from '../domain/keys';
import type { MetadataStore } from '../domain/repositories';
import type { Clock } from './context';
import { sweepImports } from './import-sweeps';
import { JOBS, underLease } from './job-lease';
import type { KeyRotator } from './key-rotation';

export interface MaintenanceDeps {
  readonly store: MetadataStore;
  readonly hsm: Hsm;
  readonly clock: Clock;
  readonly logger: Logger;
  /**
   * How old an unfinished key creation must be before it is rolled back. Another process sharing
   * the data directory may be in the middle of creating it; a creation takes milliseconds.
   */
  readonly provisioningGraceMs?: number;
  /**
   * Rotations: interrupted ones are rolled back (with the same grace as creations), then due
   * scheduled rotations and versions past the seal budget are rotated. Without it, none of that.
   */
  readonly rotator?: KeyRotator;
}

export interface ReconcileReport {
  /** Interrupted key creations rolled back (material destroyed, record removed). */
  readonly rolledBack: number;
  /** Keys whose deletion window had ended and whose material was destroyed now. */
  readonly deleted: number;
  /**
   * Records, rotations and roll-backs left to another process, which held their lease (it is
   * finishing them), or found finished by another when this one got it.
   */
  readonly skipped: number;
  /**
   * Records that could not be finished in this pass, rotations and their roll-backs included
   * (logged; the next pass tries them again).
   */
  readonly failed: number;
  /** Imported material whose expiration_time passed, deleted by this pass (import-sweeps.ts). */
  readonly importsExpired: number;
}

const DEFAULT_GRACE_MS = 60_000;

/**
 * Keeps the database and the token telling the same story: finishes what a crash interrupted,
 * destroys key material when a deletion window ends, and imported material when it expires. Each record is finished under its lease
 * (job-lease.ts), so that of several processes or instances sweeping at once exactly one does it;
 * every step is idempotent besides, so a lease that expired under a slow holder does no harm.
 */
export class KeyMaintenance {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ReconcileReport> | undefined;
  /** Failed passes over a record so far, by key id, until it is finished (bounded by the records). */
  private readonly failures = new Map<string, number>();

  constructor(private readonly deps: MaintenanceDeps) {}

  /** One pass: roll back interrupted creations, then carry out due deletions. */
  run(): Promise<ReconcileReport> {
    // One pass at a time: the timer may fire while a slow HSM is still busy with the last one.
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Compares the token with the database once at start-up and logs what does not match. */
  async reportMismatches(): Promise<void> {
    const { store, hsm, logger } = this.deps;
    // Wrapping key pairs of imports under way are no key's material (KeyImport, hsm.ts).
    const inToken = new Set(hsm.listKeys().filter((ref) => !isSystemKey(ref.keyId) && !isWrappingKey(ref)).map((ref) => `${ref.keyId}/${ref.version}`));
    const inStore = new Set((await store.keys.allMaterials()).map((ref) => `${ref.keyId}/${ref.version}`));
    const missing = [...inStore].filter((ref) => !inToken.has(ref));
    const unknown = [...inToken].filter((ref) => !inStore.has(ref));
    if (missing.length > 0) {
      logger.error({ count: missing.length, materials: missing.slice(0, 20) }, 'keys in the database have no material in the token');
    }
    if (unknown.length > 0) {
      // Left alone on purpose: a restored database backup may be older than the token.
      logger.warn({ count: unknown.length, materials: unknown.slice(0, 20) }, 'token holds KMS key material that no record names');
    }
  }

  /** Runs {@link run} every `intervalMs` until {@link stop}. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.run().catch((error: unknown) => this.deps.logger.error({ err: error }, 'key maintenance failed'));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass under way. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /**
   * Each record is finished on its own: one that fails (its material cannot be destroyed) is
   * logged, counted and left for the next pass, and the others still proceed.
   */
  private async pass(): Promise<ReconcileReport> {
    const { store, clock, logger } = this.deps;
    const now = clock();
    let rolledBack = 0;
    let failed = 0;
    let skipped = 0;
    const attempted = new Set<string>();
    const before = now - (this.deps.provisioningGraceMs ?? DEFAULT_GRACE_MS);
    // Claimed for the roll-back now that this process holds its lease, unless another has finished
    // it (made it visible, or rolled it back) since the list was read. The claim, not a re-read,
    // decides: a creation whose HSM call outlived the grace and finishes while the material is
    // being destroyed could otherwise become visible without its material.
    const stillUnfinished = (record: KeyRecord): Promise<boolean> => store.keys.claimRollback(record.keyId);
    for (const record of await store.keys.unprovisioned(before)) {
      const outcome = await this.finish(JOBS.creationRollback, record, 'rolling back an interrupted key creation', attempted, stillUnfinished);
      if (outcome === 'done') {
        rolledBack++;
        logger.warn({ keyId: record.keyId, projectId: record.projectId }, 'rolled back an interrupted key creation');
      } else if (outcome === 'failed') failed++;
      else skipped++;
    }
    let deleted = 0;
    for (const record of await store.keys.dueForDeletion(now)) {
      // Material first, record second: a crash between the two leaves a record whose window has
      // ended, which the API already treats as gone and the next pass removes.
      const outcome = await this.finish(JOBS.deletion, record, 'deleting a key whose deletion window ended', attempted, (due) => stillDue(store, due, now));
      if (outcome === 'done') {
        deleted++;
        logger.info({ keyId: record.keyId, projectId: record.projectId }, 'key deleted: deletion window ended');
      } else if (outcome === 'failed') failed++;
      else skipped++;
    }
    // A record finished elsewhere (another process, an alias released by create-key) is forgotten.
    for (const keyId of this.failures.keys()) if (!attempted.has(keyId)) this.failures.delete(keyId);
    const imports = await sweepImports(store, this.deps.hsm, now, logger);
    failed += imports.failed;
    skipped += imports.skipped;
    const { rotator } = this.deps;
    if (rotator) {
      // Roll-backs first: a key whose rotation was interrupted is claimed until then. Each is logged.
      const reconciled = await rotator.reconcile(before);
      const due = await rotator.rotateDue();
      failed += reconciled.failed + due.failed;
      skipped += reconciled.skipped + due.skipped;
    }
    if (failed > 0) logger.error({ rolledBack, deleted, failed }, 'key maintenance pass left records unfinished; the next pass retries them');
    return { rolledBack, deleted, skipped, failed, importsExpired: imports.expired };
  }

  /**
   * Finishes one record's deletion under its lease, if `pending` still holds once the lease is
   * held: 'failed' (logged at error level, counted) when it failed, 'skipped' when another
   * process holds the lease or has finished the record.
   */
  private async finish(
    job: string,
    record: KeyRecord,
    what: string,
    attempted: Set<string>,
    pending: (record: KeyRecord) => Promise<boolean>,
  ): Promise<'done' | 'skipped' | 'failed'> {
    attempted.add(record.keyId);
    try {
      const outcome = await underLease(this.deps.store.leases, job, record.keyId, async () => {
        if (!(await pending(record))) return false;
        await finishDeletion(this.deps.store, this.deps.hsm, record);
        return true;
      }, { logger: this.deps.logger });
      this.failures.delete(record.keyId);
      return outcome.claimed && outcome.value ? 'done' : 'skipped';
    } catch (error) {
      const attempts = (this.failures.get(record.keyId) ?? 0) + 1;
      this.failures.set(record.keyId, attempts);
      this.deps.logger.error({ err: error, keyId: record.keyId, projectId: record.projectId, attempts }, `key maintenance failed ${what}; retrying next pass`);
      return 'failed';
    }
  }
}

/**
 * Removes a key for good, material first (every version; those already gone are skipped), then
 * the record: for a key whose deletion window has ended, and for a creation that never finished.
 */
export async function finishDeletion(store: Pick<MetadataStore, 'keys'>, hsm: Hsm, record: KeyRecord): Promise<void> {
  for (const version of await store.keys.materialVersions(record.keyId)) {
    await hsm.destroyKey({ keyId: record.keyId, version });
  }
  // An imported key's wrapping key pair, if an import was asked for and never finished.
  if (record.origin === 'external') await hsm.destroyKey({ keyId: record.keyId, version: WRAPPING_KEY_VERSION });
  await store.keys.remove(record.keyId);
}

/** Whether a key's deletion is still to be finished: its record is there, and its window has ended at `now`. */
async function stillDue(store: Pick<MetadataStore, 'keys'>, record: KeyRecord, now: number): Promise<boolean> {
  const current = await store.keys.get(record.projectId, record.keyId);
  return current !== undefined && isDestroyed(current, now);
}

/**
 * finishDeletion under the deletion's lease (the sweep's), when the deletion is still due once the
 * lease is held: nothing when another process holds it or has finished it.
 */
export async function finishDeletionOnce(store: MetadataStore, hsm: Hsm, record: KeyRecord, now: number, logger: Logger): Promise<void> {
  await underLease(store.leases, JOBS.deletion, record.keyId, async () => {
    if (await stillDue(store, record, now)) await finishDeletion(store, hsm, record);
  }, { logger });
}
