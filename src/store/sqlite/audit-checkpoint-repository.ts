import type { AuditCheckpoint, AuditCheckpointRepository } from '../../domain/repositories';
import type { SqliteSession } from './session';

/** Each instance's audit chain head (migration 6), replaced at every checkpoint. */
export class SqliteAuditCheckpointRepository implements AuditCheckpointRepository {
  private readonly statements;

  constructor(private readonly session: SqliteSession) {
    const { db } = session;
    this.statements = {
      record: db.prepare(
        `INSERT INTO audit_checkpoints (instance, records, head, at) VALUES (@instance, @records, @head, @at)
         ON CONFLICT (instance) DO UPDATE SET records = excluded.records, head = excluded.head, at = excluded.at`,
      ),
      all: db.prepare<[], AuditCheckpoint>('SELECT instance, records, head, at FROM audit_checkpoints ORDER BY instance'),
    };
  }

  async record(checkpoint: AuditCheckpoint): Promise<void> {
    await this.session.atomic(() => this.statements.record.run({ ...checkpoint }));
  }

  async all(): Promise<AuditCheckpoint[]> {
    return this.statements.all.all().map((row) => ({ ...row }));
  }
}
