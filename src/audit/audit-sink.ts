import type { AuditRecord } from './audit-log';

/** Where a service process sends its audit records: the log itself, or the process that owns it. */
export interface AuditSink {
  append(record: AuditRecord): void;
  /** Sends or writes whatever is pending; the sink takes no records after this. */
  close(): Promise<void> | void;
}

/** The message a worker process sends to the primary, which owns the one hash chain. */
export interface AuditMessage {
  readonly type: 'kms-audit';
  readonly records: readonly AuditRecord[];
}

export function isAuditMessage(message: unknown): message is AuditMessage {
  return typeof message === 'object' && message !== null && (message as AuditMessage).type === 'kms-audit' && Array.isArray((message as AuditMessage).records);
}

/**
 * A worker's sink: records of one event-loop turn travel to the primary in one IPC message. The
 * chain stays whole with several workers because only the primary hashes and writes.
 */
export class IpcAuditSink implements AuditSink {
  private pending: AuditRecord[] = [];
  private scheduled = false;
  private inFlight = 0;
  private idle: Array<() => void> = [];

  constructor(private readonly send: (message: AuditMessage, done: (error: Error | null) => void) => void) {}

  append(record: AuditRecord): void {
    this.pending.push(record);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const records = this.pending;
    this.pending = [];
    this.inFlight++;
    this.send({ type: 'kms-audit', records }, () => {
      this.inFlight--;
      if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve();
    });
  }

  async close(): Promise<void> {
    this.flush();
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }
}
