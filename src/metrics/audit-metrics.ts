import { Counter, Histogram, type Registry } from 'prom-client';
import type { AuditObserver } from '../audit/audit-log';

/** A batch of audit lines is one write(2) and, with KMS_AUDIT_SYNC=always, one fdatasync(2): microseconds to milliseconds on a local disk, more on a busy or network one. */
const WRITE_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5];

/** The audit chain's writes: how long each batch took, and how many failed (operations get 503 until one succeeds). */
export class AuditMetrics implements AuditObserver {
  private readonly duration: Histogram;
  private readonly failures: Counter;

  constructor(registry: Registry) {
    this.duration = new Histogram({
      name: 'kms_audit_write_duration_seconds',
      help: "Duration of the audit chain's batch writes (write, and fdatasync with KMS_AUDIT_SYNC=always), failed ones included.",
      buckets: WRITE_BUCKETS,
      registers: [registry],
    });
    this.failures = new Counter({
      name: 'kms_audit_write_failures_total',
      help: 'Audit chain writes that failed (new operations are refused with 503 until a write succeeds).',
      registers: [registry],
    });
  }

  wrote(seconds: number, failed: boolean): void {
    this.duration.observe(seconds);
    if (failed) this.failures.inc();
  }
}
