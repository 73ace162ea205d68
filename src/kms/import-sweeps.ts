import type { Logger } from 'pino';
import type { MetadataStore } from '../domain/repositories';
import { WRAPPING_KEY_VERSION, type Hsm } from '../hsm/hsm';
import { releaseMaterial } from './import-service';
import { JOBS, underLease } from './job-lease';

export interface ImportSweepReport {
  /** Imported material whose expiration_time passed, deleted now (the key is pending import again). */
  readonly expired: number;
  /** Wrapping key pairs whose import token expired, destroyed now. */
  readonly wrappingKeysDestroyed: number;
  /** Left to another process, which held the key's import lease, or found done by another. */
  readonly skipped: number;
  /** Failed this pass (logged; the next pass tries them again). */
  readonly failed: number;
}

/**
 * The maintenance sweep's part for imports, each key under its import lease (the one every import
 * step takes), re-checked once the lease is held, so that of several processes or instances
 * exactly one does it: imported material whose expiration_time has passed is deleted (the key goes
 * back to pending import, import-service.ts releaseMaterial), and wrapping key pairs whose token
 * expired unused are destroyed, so that what the token holds for imports stays bounded.
 */
export async function sweepImports(store: MetadataStore, hsm: Hsm, now: number, logger: Logger): Promise<ImportSweepReport> {
  let expired = 0;
  let wrappingKeysDestroyed = 0;
  let skipped = 0;
  let failed = 0;
  for (const due of await store.imports.materialExpired(now)) {
    try {
      const outcome = await underLease(store.leases, JOBS.keyImport, due.keyId, async () => {
        const record = await store.keys.get(due.projectId, due.keyId);
        return record !== undefined && (await releaseMaterial(store, hsm, record, (current) => current.materialExpiresAt !== null && current.materialExpiresAt <= now));
      }, { logger });
      if (outcome.claimed && outcome.value) {
        expired++;
        logger.info({ keyId: due.keyId, projectId: due.projectId }, 'imported key material expired: deleted, the key is pending import');
      } else skipped++;
    } catch (error) {
      failed++;
      logger.error({ err: error, keyId: due.keyId, projectId: due.projectId }, 'key maintenance failed deleting expired imported material; retrying next pass');
    }
  }
  for (const due of await store.imports.wrappingExpired(now)) {
    try {
      const outcome = await underLease(store.leases, JOBS.keyImport, due.keyId, async () => {
        const current = await store.imports.get(due.keyId);
        if (!current || current.wrappingExpiresAt === null || current.wrappingExpiresAt > now) return false;
        await hsm.destroyKey({ keyId: due.keyId, version: WRAPPING_KEY_VERSION });
        await store.imports.put({ ...current, wrappingExpiresAt: null });
        return true;
      }, { logger });
      if (outcome.claimed && outcome.value) wrappingKeysDestroyed++;
      else skipped++;
    } catch (error) {
      failed++;
      logger.error({ err: error, keyId: due.keyId, projectId: due.projectId }, 'key maintenance failed destroying an expired wrapping key; retrying next pass');
    }
  }
  return { expired, wrappingKeysDestroyed, skipped, failed };
}
