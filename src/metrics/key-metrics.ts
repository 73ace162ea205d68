import { Counter, Gauge, type Registry } from 'prom-client';
import type { RotationObserver } from '../kms/key-rotation';
import type { KeyState } from '../domain/keys';
import type { RotationReason } from '../domain/rotation';

/** key_state's values by the names the metrics label them with. */
const STATE_NAMES: ReadonlyArray<readonly [KeyState, string]> = [
  ['1', 'pending_activation'],
  ['2', 'enabled'],
  ['3', 'disabled'],
  ['4', 'pending_deletion'],
  ['5', 'pending_import'],
];

const REASONS: readonly RotationReason[] = ['on-demand', 'scheduled', 'budget'];

/** What the key metrics read at scrape time (the database, this process's seal count). */
export interface KeySources {
  /** Keys of every project by state (KeyRepository.countByState). */
  readonly keysByState: () => Promise<ReadonlyMap<KeyState, number>>;
  /** Seals this process has counted (SealUsage.counted). */
  readonly sealsCounted: () => number;
  /** The most seals under any enabled key's current version (RotationRepository.mostSeals). */
  readonly mostSeals: () => Promise<number>;
  /** KMS_SEAL_BUDGET. */
  readonly sealBudget: number;
}

/**
 * Keys by state and the GCM IV budget, read at scrape time, and the rotations this process made.
 * What comes from the database is the same in every cluster worker: aggregated with `first`, not
 * summed; what a worker counts itself is summed.
 */
export class KeyMetrics implements RotationObserver {
  private readonly rotations: Counter<'reason'>;
  private readonly failures: Counter<'reason'>;
  private sources: KeySources | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    const sources = (): KeySources | undefined => this.sources;
    new Gauge({
      name: 'kms_keys',
      help: 'Customer master keys of every project by state, read from the database at scrape time.',
      labelNames: ['state'],
      aggregator: 'first',
      registers,
      async collect() {
        const now = sources();
        if (!now) return;
        const counts = await now.keysByState();
        for (const [state, name] of STATE_NAMES) this.set({ state: name }, counts.get(state) ?? 0);
      },
    });
    this.rotations = new Counter({
      name: 'kms_key_rotations_total',
      help: 'Key rotations made, by reason: on-demand (the API), scheduled, budget (the seal budget was used up).',
      labelNames: ['reason'],
      registers,
    });
    this.failures = new Counter({
      name: 'kms_key_rotation_failures_total',
      help: 'Key rotations that failed (retried by the next pass), by reason.',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of REASONS) {
      this.rotations.inc({ reason }, 0);
      this.failures.inc({ reason }, 0);
    }
    new Counter({
      name: 'kms_seals_total',
      help: 'Encryptions under CMK material counted toward the GCM IV budget.',
      registers,
      collect() {
        const now = sources();
        if (!now) return;
        this.reset();
        this.inc(now.sealsCounted());
      },
    });
    new Gauge({
      name: 'kms_seal_budget',
      help: 'Encryptions per material version after which a key is rotated (KMS_SEAL_BUDGET).',
      aggregator: 'first',
      registers,
      collect() {
        const now = sources();
        if (now) this.set(now.sealBudget);
      },
    });
    new Gauge({
      name: 'kms_seal_budget_used_max_ratio',
      help: "The largest share of the seal budget an enabled key's current material version has used (seal counts as flushed to the database).",
      aggregator: 'max',
      registers,
      async collect() {
        const now = sources();
        if (now) this.set((await now.mostSeals()) / now.sealBudget);
      },
    });
  }

  watch(sources: KeySources): void {
    this.sources = sources;
  }

  rotated(reason: RotationReason): void {
    this.rotations.inc({ reason });
  }

  rotationFailed(reason: RotationReason): void {
    this.failures.inc({ reason });
  }
}
