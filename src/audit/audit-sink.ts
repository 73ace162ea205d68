import type { KmsError } from '../errors';
import type { AuditOutcome } from './audit-log';
import type { AuditRecord } from './audit-records';
import type { AuthFailure } from './auth-failure-audit';

/** Where the HTTP layer sends what it audits: the ServiceAudit of the process. */
export interface AuditSink {
  /** Throws KMS.0104 (503) when a record could not be written now: the operation must not run. */
  checkWritable(): void;
  /**
   * Chains the record now; resolves (never rejects) once it is done as KMS_AUDIT_SYNC says (on the
   * disk, or in the file), or with the failure that kept it from being so. No response may leave
   * before that: the caller answers 503 KMS.0104 on a failure ({@link AuditNotDone}).
   */
  append(record: AuditRecord): Promise<AuditOutcome>;
  /** A failed authentication, recorded at a bounded cost (aggregated, see AuthFailureAudit). */
  authenticationFailed(failure: AuthFailure): void;
  /** Writes whatever is pending; the sink takes no records after this. */
  close(): Promise<void>;
}

/**
 * Why an answer became 503 KMS.0104: its audit record could not be made durable. It keeps the
 * answer the request would have had (`answer`, the typed error, or none for a success), so that
 * the log shows it beside the audit failure (its cause).
 */
export class AuditNotDone extends Error {
  constructor(
    failure: Error,
    readonly answer?: KmsError,
  ) {
    super(`the audit record could not be made durable, so the answer ${answer ? `${answer.status} ${answer.code}` : '200'} became 503 KMS.0104`, { cause: failure });
    this.name = 'AuditNotDone';
  }
}
