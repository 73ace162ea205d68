import type { Logger } from 'pino';

/** What the readiness probe asks of the HSM: one cheap call on a pooled session (Hsm.ping). */
export interface HsmPing {
  ping(): Promise<void>;
}

/** The names of the readiness checks, as GET /readyz reports them. */
export type CheckName = 'hsm' | 'database' | 'audit';
export type CheckOutcome = 'ok' | 'failed' | 'timeout';

export interface ReadinessReport {
  readonly ready: boolean;
  readonly draining: boolean;
  readonly checks: Readonly<Record<CheckName, CheckOutcome>>;
}

export interface ReadinessDeps {
  readonly hsm: HsmPing;
  /** Rejects when the store does not answer (MetadataStore.ping). */
  readonly database: () => Promise<void>;
  /** Throws when the audit log cannot take a record now (AuditSink.checkWritable). */
  readonly audit: () => void;
  /** Whether the service is stopping (SIGTERM): not ready, whatever the checks say. */
  readonly draining: () => boolean;
  /** How long the HSM may take to answer the probe. */
  readonly deadlineMs: number;
  readonly logger: Logger;
}

const TIMED_OUT = Symbol('timed out');

/**
 * Readiness: the HSM answers within its deadline, the database answers, the audit log is
 * writable. Probes that arrive while an HSM ping is under way share it, so a slow HSM is not
 * asked again by every probe. What failed is logged (when the outcome changes, so a probe every
 * few seconds does not fill the log); the report names only each check's outcome.
 */
export class Readiness {
  private pinging: Promise<CheckOutcome> | undefined;
  private last: string | undefined;

  constructor(private readonly deps: ReadinessDeps) {}

  async check(): Promise<ReadinessReport> {
    const failures: Partial<Record<CheckName, unknown>> = {};
    const sync = (name: CheckName, run: () => void): CheckOutcome => {
      try {
        run();
        return 'ok';
      } catch (error) {
        failures[name] = error;
        return 'failed';
      }
    };
    const database = await this.pingDatabase(failures);
    const audit = sync('audit', this.deps.audit);
    const hsm = await (this.pinging ??= this.pingHsm(failures).finally(() => {
      this.pinging = undefined;
    }));
    const checks = { hsm, database, audit };
    const draining = this.deps.draining();
    const ready = !draining && hsm === 'ok' && database === 'ok' && audit === 'ok';
    this.logChange(checks, draining, failures);
    return { ready, draining, checks };
  }

  private async pingDatabase(failures: Partial<Record<CheckName, unknown>>): Promise<CheckOutcome> {
    try {
      await this.deps.database();
      return 'ok';
    } catch (error) {
      failures.database = error;
      return 'failed';
    }
  }

  private async pingHsm(failures: Partial<Record<CheckName, unknown>>): Promise<CheckOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => resolve(TIMED_OUT), this.deps.deadlineMs);
    });
    try {
      const answer = await Promise.race([this.deps.hsm.ping().then(() => 'ok' as const), deadline]);
      return answer === TIMED_OUT ? 'timeout' : answer;
    } catch (error) {
      failures.hsm = error;
      return 'failed';
    } finally {
      clearTimeout(timer);
    }
  }

  private logChange(checks: Record<CheckName, CheckOutcome>, draining: boolean, failures: Partial<Record<CheckName, unknown>>): void {
    const summary = JSON.stringify({ checks, draining });
    if (summary === this.last) return;
    const first = this.last === undefined;
    this.last = summary;
    const failed = Object.values(checks).some((outcome) => outcome !== 'ok');
    if (!failed) {
      if (!first) this.deps.logger.info({ checks, draining }, 'readiness checks pass again');
      return;
    }
    // Only the cause's message (a KMS code, a CKR name, an errno), never an object that could carry more.
    const causes = Object.fromEntries(Object.entries(failures).map(([name, error]) => [name, causeOf(error)]));
    this.deps.logger.warn({ checks, draining, causes }, 'readiness check failed');
  }
}

function causeOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}
