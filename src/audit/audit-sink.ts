import type { AuditRecord } from './audit-log';

/** Where the HTTP layer sends its audit records: the AuditLog of the process. */
export interface AuditSink {
  append(record: AuditRecord): void;
  /** Writes whatever is pending; the sink takes no records after this. */
  close(): void;
}
