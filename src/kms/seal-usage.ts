import type { Logger } from 'pino';
import type { MaterialRef } from '../hsm/hsm';
import type { RotationRepository } from '../domain/repositories';
import type { SealCount } from '../domain/rotation';
import type { KeyRotator } from './key-rotation';

/**
 * Counts encryptions (seals) per material version for the GCM IV budget: with 96-bit random IVs,
 * NIST SP 800-38D allows 2^32 encryptions per key. Counting is a Map increment per seal; the
 * counts are added to the database in one transaction every flush interval and at shutdown, never
 * a write per request. After a flush, versions past the budget are rotated (the claim makes that
 * happen once, whichever process flushes). A crash loses at most one interval's counts, which
 * the default budget (a quarter of 2^32) leaves room for many times over.
 */
export class SealUsage {
  private pending = new Map<string, { keyId: string; version: number; count: number }>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private sealed = 0;

  constructor(
    private readonly rotations: RotationRepository,
    private readonly rotator: KeyRotator,
    private readonly logger: Logger,
  ) {}

  /** One seal under `ref`. */
  count(ref: MaterialRef): void {
    this.sealed++;
    this.add(ref, 1);
  }

  /** Seals this process has counted since it started (the metrics read it). */
  get counted(): number {
    return this.sealed;
  }

  private add(ref: MaterialRef, count: number): void {
    const id = `${ref.keyId}/${ref.version}`;
    const entry = this.pending.get(id);
    if (entry) entry.count += count;
    else this.pending.set(id, { keyId: ref.keyId, version: ref.version, count });
  }

  /** Seals under `ref` counted here and not yet flushed. */
  unflushed(ref: MaterialRef): number {
    return this.pending.get(`${ref.keyId}/${ref.version}`)?.count ?? 0;
  }

  /** Writes the counts, then (unless `rotate` is false) rotates versions past the budget. */
  flush(options: { rotate?: boolean } = {}): Promise<void> {
    // One flush at a time: a slow HSM may still be rotating when the timer fires again.
    this.flushing ??= this.write(options.rotate ?? true).finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Flushes every `intervalMs` until {@link stop}. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.flush().catch((error: unknown) => this.logger.error({ err: error }, 'flushing seal counts failed; they are kept for the next flush'));
    }, intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and writes what is counted (no rotation: the service is stopping). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flushing?.catch(() => undefined);
    await this.flush({ rotate: false });
  }

  private async write(rotate: boolean): Promise<void> {
    if (this.pending.size > 0) {
      const counts: SealCount[] = [...this.pending.values()];
      this.pending = new Map();
      try {
        await this.rotations.addSeals(counts);
      } catch (error) {
        // Put them back (beside what was counted meanwhile), so no seal goes uncounted.
        for (const { keyId, version, count } of counts) this.add({ keyId, version }, count);
        throw error;
      }
    }
    if (rotate) await this.rotator.rotateOverBudget();
  }
}
