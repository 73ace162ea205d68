import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { HsmState } from '../hsm/hsm';
import { HSM_CALLS, type HsmCallName, type HsmObserver } from '../hsm/hsm-observer';

/**
 * An HSM operation takes from tens of microseconds (SoftHSM in the process) to hundreds of
 * milliseconds (a network HSM under load), up to the call deadline (5 s by default).
 */
const HSM_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** "generate key" → "generate_key": label values without spaces. */
function label(call: HsmCallName): string {
  return call.replace(/ /g, '_');
}

/**
 * The HSM's metrics: each operation's duration and PKCS#11 errors (reported by the session
 * runner), and, read from Hsm.state() at scrape time, the session pool and the module's
 * re-initialisations. Summed across a cluster's workers (each has its own sessions and module).
 */
export class HsmMetrics implements HsmObserver {
  private readonly duration: Histogram<'function'>;
  private readonly errors: Counter<'function' | 'ckr'>;
  private readonly timeouts: Counter<'function'>;
  /** Each operation's histogram series, bound once: cheaper per call than a label object (see RequestMetrics). */
  private readonly durations: ReadonlyMap<HsmCallName, Histogram.Internal<'function'>>;
  private state: (() => HsmState) | undefined;

  constructor(registry: Registry) {
    const registers = [registry];
    this.duration = new Histogram({
      name: 'kms_hsm_call_duration_seconds',
      help: 'Duration of HSM operations on a session (their PKCS#11 calls), by operation; calls that passed their deadline are not included.',
      labelNames: ['function'],
      buckets: HSM_BUCKETS,
      registers,
    });
    this.errors = new Counter({
      name: 'kms_hsm_call_errors_total',
      help: 'HSM operations the module refused, by operation and CKR name.',
      labelNames: ['function', 'ckr'],
      registers,
    });
    this.timeouts = new Counter({
      name: 'kms_hsm_call_timeouts_total',
      help: 'HSM operations that got no answer within the call deadline (their session was abandoned), by operation.',
      labelNames: ['function'],
      registers,
    });
    this.durations = new Map(HSM_CALLS.map((call) => [call, this.duration.labels({ function: label(call) })]));
    const state = (): HsmState | undefined => this.state?.();
    new Gauge({
      name: 'kms_hsm_sessions',
      help: 'Open PKCS#11 sessions by state: busy (leased to an operation), free, abandoned (their call hung and has not come back).',
      labelNames: ['state'],
      registers,
      collect() {
        const now = state();
        if (!now) return;
        for (const key of ['busy', 'free', 'abandoned'] as const) this.set({ state: key }, now.sessions[key]);
      },
    });
    new Gauge({
      name: 'kms_hsm_session_pool_size',
      help: 'PKCS#11 sessions the pool may hold (KMS_PKCS11_SESSIONS, or fewer if the token allows fewer).',
      registers,
      collect() {
        const now = state();
        if (now) this.set(now.sessions.size);
      },
    });
    new Gauge({
      name: 'kms_hsm_session_waiters',
      help: 'Operations waiting for a free PKCS#11 session.',
      registers,
      collect() {
        const now = state();
        if (now) this.set(now.waiters);
      },
    });
    new Gauge({
      name: 'kms_hsm_backing_off',
      help: '1 while a failed module re-initialisation backs off (requests get 503 at once), else 0; summed over cluster workers.',
      registers,
      collect() {
        const now = state();
        if (now) this.set(now.backingOff ? 1 : 0);
      },
    });
    new Counter({
      name: 'kms_hsm_reinitialisations_total',
      help: 'Re-initialisations of the PKCS#11 module: recovery (after a module failure) or reread (a key the database names was not in the view of the token).',
      labelNames: ['reason'],
      registers,
      collect() {
        const now = state();
        if (!now) return;
        // The runner counts them; the counter shows its counts.
        this.reset();
        this.inc({ reason: 'recovery' }, now.recoveries);
        this.inc({ reason: 'reread' }, now.rereads);
      },
    });
  }

  /** Where the scrape reads the pool and the re-initialisations from, once the HSM is open. */
  watch(state: () => HsmState): void {
    this.state = state;
  }

  callEnded(call: HsmCallName, seconds: number, ckr: string | undefined): void {
    this.durations.get(call)!.observe(seconds);
    if (ckr !== undefined) this.errors.inc({ function: label(call), ckr });
  }

  callTimedOut(call: HsmCallName): void {
    this.timeouts.inc({ function: label(call) });
  }
}
