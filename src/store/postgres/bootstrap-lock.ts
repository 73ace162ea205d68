import type { Client } from 'pg';
import type { BootstrapLock } from '../../domain/coordination';
import { guarded } from './errors';
import { ADVISORY_NAMESPACE } from './migrations';

/** pg_advisory_lock's (int, int) key: the first number names the bootstrap locks. */
const BOOTSTRAP_LOCK = ADVISORY_NAMESPACE + 2;

/**
 * One-at-a-time work across every instance (the token's first set-up): a session advisory lock on
 * a connection of its own, opened for the work and closed after it. PostgreSQL releases the lock
 * when that session ends, so a process that dies holding it frees it with its connection. Right for
 * work that lasts as long as one process's start; exactly-once jobs use leases instead (job-leases.ts).
 */
export class PostgresBootstrapLock implements BootstrapLock {
  constructor(
    private readonly connect: () => Client,
    private readonly report: (problem: string, error: unknown) => void,
  ) {}

  async exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    const client = this.connect();
    // Losing the connection releases the lock on the server; the error must not end the process.
    client.on('error', (error) => this.report('the bootstrap lock lost its connection', error));
    try {
      await guarded(() => client.connect());
      await guarded(() => client.query('SELECT pg_advisory_lock($1, hashtext($2))', [BOOTSTRAP_LOCK, name]));
      return await work();
    } finally {
      // Ending the session releases the lock.
      await client.end().catch(() => undefined);
    }
  }
}
