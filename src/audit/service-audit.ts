import path from 'node:path';
import type { Logger } from 'pino';
import { AuditLog, formatHead, type AuditObserver, type AuditOutcome, type AuditSync, type ChainHead } from './audit-log';
import type { AuditRecord } from './audit-records';
import { ChainCheckpoints, type CheckpointTarget } from './chain-checkpoints';
import type { AuditSink } from './audit-sink';
import { AuthFailureAudit, DEFAULT_AUTH_FAILURE_AUDIT, type AuthFailure, type AuthFailureAuditOptions } from './auth-failure-audit';

export interface ServiceAuditOptions {
  readonly logger: Logger;
  /** How often the chain's head is logged, when it moved (KMS_AUDIT_HEAD_INTERVAL_SECONDS). */
  readonly headIntervalMs: number;
  readonly authFailures?: AuthFailureAuditOptions;
  /** Told of every write of the chain (the metrics). */
  readonly observer?: AuditObserver;
  /** When a record counts as done (KMS_AUDIT_SYNC); default `always`. */
  readonly sync?: AuditSync;
  /** The instance (KMS_INSTANCE_ID) every record names. */
  readonly instance?: string;
  /** Where the chain's head is checkpointed (the database the instances share); none: not checkpointed. */
  readonly checkpoints?: CheckpointTarget;
}

/**
 * The audit trail of one serving process: its hash chain, the aggregated record of failed
 * authentications, and the chain's head, logged when the chain opens, every `headIntervalMs` when
 * it moved, and when it closes. The log goes out of the data directory (to the journal, a log
 * collector): kept there, the head anchors the chain's end, which the chain alone cannot (lines cut
 * from the end leave a shorter chain that is whole), see `audit verify --expect-head`. Where
 * instances share a database, the head is also checkpointed there (chain-checkpoints.ts), which
 * `audit verify` checks without being told.
 */
export class ServiceAudit implements AuditSink {
  private readonly log: AuditLog;
  private readonly failures: AuthFailureAudit;
  private readonly timer: NodeJS.Timeout;
  private readonly checkpoints: ChainCheckpoints | undefined;
  private reported: ChainHead | undefined;

  constructor(file: string, private readonly options: ServiceAuditOptions) {
    this.log = new AuditLog(file, { observer: options.observer, sync: options.sync, instance: options.instance });
    this.failures = new AuthFailureAudit(this.log, options.authFailures ?? DEFAULT_AUTH_FAILURE_AUDIT);
    this.checkpoints = options.checkpoints && new ChainCheckpoints(this.log, options.checkpoints, options.logger);
    this.reportHead('audit chain opened');
    this.timer = setInterval(() => this.reportHead('audit chain head'), options.headIntervalMs);
    this.timer.unref();
  }

  checkWritable(): void {
    this.log.checkWritable();
  }

  append(record: AuditRecord): Promise<AuditOutcome> {
    return this.log.append(record);
  }

  authenticationFailed(failure: AuthFailure): void {
    this.failures.record(failure);
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    this.failures.close();
    try {
      await this.log.close();
    } finally {
      // What the chain holds now, checkpointed even when its last lines could not be written.
      await this.checkpoints?.close();
    }
    this.reportHead('audit chain closed', true);
  }

  private reportHead(message: string, always = false): void {
    const head = this.log.head;
    if (!always && this.reported && this.reported.records === head.records) return;
    // An anchor kept elsewhere must never name lines that a power cut could still take back: one
    // that could not be synced says so.
    const synced = this.log.syncNow();
    this.reported = head;
    const chain = path.basename(this.log.file);
    const audit = { chain, records: head.records, head: head.hash, anchor: `${chain}=${formatHead(head)}`, ...(synced ? {} : { synced: false }) };
    this.options.logger.info({ audit }, message);
  }
}
