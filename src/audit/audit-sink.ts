import type { AuditRecord } from './audit-records';
import type { AuthFailure } from './auth-failure-audit';

/** Where the HTTP layer sends what it audits: the ServiceAudit of the process. */
export interface AuditSink {
  /** Throws KMS.0104 (503) when a record could not be written now: the operation must not run. */
  checkWritable(): void;
  append(record: AuditRecord): void;
  /** A failed authentication, recorded at a bounded cost (aggregated, see AuthFailureAudit). */
  authenticationFailed(failure: AuthFailure): void;
  /** Writes whatever is pending; the sink takes no records after this. */
  close(): void;
}
