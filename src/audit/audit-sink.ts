import type { AuditRecord } from './audit-log';

/** Where the HTTP layer sends its audit records: the AuditLog of the process. */
export interface AuditSink {
  /** Throws KMS.0104 (503) when a record could not be written now: the operation must not run. */
  checkWritable(): void;
  append(record: AuditRecord): void;
  /** Writes whatever is pending; the sink takes no records after this. */
  close(): void;
}
