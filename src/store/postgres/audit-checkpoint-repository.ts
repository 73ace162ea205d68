import type { AuditCheckpoint, AuditCheckpointRepository } from '../../domain/repositories';
import type { Executor } from './executor';

/** Each instance's latest audit chain head (migration 6), one row per instance. */
export class PostgresAuditCheckpointRepository implements AuditCheckpointRepository {
  constructor(private readonly db: Executor) {}

  async record(checkpoint: AuditCheckpoint): Promise<void> {
    await this.db.query(
      `INSERT INTO audit_checkpoints (instance, records, head, at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (instance) DO UPDATE SET records = excluded.records, head = excluded.head, at = excluded.at`,
      [checkpoint.instance, checkpoint.records, checkpoint.head, checkpoint.at],
    );
  }

  async all(): Promise<AuditCheckpoint[]> {
    const { rows } = await this.db.query<{ instance: string; records: number; head: string; at: number }>(
      'SELECT instance, records, head, at FROM audit_checkpoints ORDER BY instance',
    );
    return rows.map((row) => ({ instance: row.instance, records: row.records, head: row.head, at: row.at }));
  }
}
