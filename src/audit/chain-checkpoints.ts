import path from 'node:path';
import type { Logger } from 'pino';
import type { AuditCheckpointRepository } from '../domain/repositories';
import type { ChainHead } from './audit-log';

/** Where a chain's heads are checkpointed: the shared database, under the instance's name. */
export interface CheckpointTarget {
  readonly repository: AuditCheckpointRepository;
  /** KMS_INSTANCE_ID. */
  readonly instance: string;
  /** KMS_AUDIT_CHECKPOINT_SECONDS, in milliseconds. */
  readonly intervalMs: number;
}

/** What a checkpoint reads from its chain: the head of what is durable in the file. */
export interface CheckpointedChain {
  readonly file: string;
  syncedHead(): Promise<ChainHead | undefined>;
}

/**
 * The name a chain's checkpoint is kept under: `<instance>/<chain file>`, e.g. `kms-a/audit-2.log`
 * (cluster worker 2 of instance kms-a). `kms audit verify` looks a chain up by it.
 */
export function checkpointName(instance: string, chainFile: string): string {
  return `${instance}/${path.basename(chainFile)}`;
}

/**
 * Records a chain's head in the database every `intervalMs` when it moved, and once more when the
 * chain closes. A chain only grows, so a chain file that no longer reaches its last checkpoint was
 * cut short, whatever else its lines say (they are whole: the chain alone cannot tell). Only a head
 * already synced to the disk is recorded: a power cut must not take back lines a checkpoint names.
 * A failure to record (the database away) is logged and tried again at the next tick; requests
 * never wait for it.
 */
export class ChainCheckpoints {
  private readonly name: string;
  private readonly timer: NodeJS.Timeout;
  private recorded: ChainHead | undefined;
  private running: Promise<void> | undefined;
  private failing = false;

  constructor(
    private readonly chain: CheckpointedChain,
    private readonly target: CheckpointTarget,
    private readonly logger: Logger,
  ) {
    this.name = checkpointName(target.instance, chain.file);
    this.timer = setInterval(() => void this.checkpoint(), target.intervalMs);
    this.timer.unref();
  }

  /** Records the chain's synced head if it moved since the last checkpoint; one at a time. */
  checkpoint(): Promise<void> {
    return (this.running ??= this.record().finally(() => (this.running = undefined)));
  }

  /** Stops the timer and records the final head (call once the chain has written its last line). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
    await this.checkpoint();
  }

  private async record(): Promise<void> {
    const head = await this.chain.syncedHead();
    if (head === undefined) {
      this.logger.warn({ chain: this.name }, 'audit checkpoint skipped: the chain could not be synced');
      return;
    }
    if (this.recorded && this.recorded.records === head.records) return;
    try {
      await this.target.repository.record({ instance: this.name, records: head.records, head: head.hash, at: Date.now() });
      this.recorded = head;
      if (this.failing) this.logger.info({ chain: this.name, records: head.records }, 'audit checkpoints recorded again');
      this.failing = false;
    } catch (error) {
      // Logged once per outage, not at every tick.
      if (!this.failing) this.logger.warn({ err: error, chain: this.name }, 'audit checkpoint could not be recorded; trying again');
      this.failing = true;
    }
  }
}
