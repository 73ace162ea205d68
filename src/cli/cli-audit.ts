import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import type Database from 'better-sqlite3';
import { appendDurably, AuditLog } from '../audit/audit-log';
import type { AuditRecord, CredentialChangeRecord } from '../audit/audit-records';
import { KmsError } from '../errors';
import type { Operation } from '../http/operation';
import type { RequestContext } from '../kms/context';

/**
 * The tool's audit chain, audit-cli.log: credential changes, and the key operations it runs, each
 * recorded as the API records that operation. Every append happens under the database's write
 * lock (BEGIN IMMEDIATE): the lock orders concurrent runs of the tool, so no two extend the chain
 * from the same line, and the operating system releases it if the tool dies.
 */

export type Operator = CredentialChangeRecord['operator'];

/** Who runs the command, for the record: the operating system's user (its uid when it has no name). */
export function operator(): Operator {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = `uid ${process.getuid?.() ?? 'unknown'}`;
  }
  return { user, pid: process.pid };
}

/** Runs `work` under the database's write lock; commits if it returns, rolls back if it throws. */
async function underWriteLock<T>(db: Database.Database, work: () => Promise<T> | T): Promise<T> {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = await work();
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

/**
 * Makes a credential change and appends its record in one step, under the write lock. The record
 * is written and synced before the change commits; if it cannot be, the change is rolled back, so
 * no change goes unrecorded.
 */
export function auditedCredentialChange<T>(
  db: Database.Database,
  file: string,
  change: () => Promise<T> | T,
  describe: (result: T) => Omit<CredentialChangeRecord, 'time' | 'event' | 'operator'>,
): Promise<T> {
  return underWriteLock(db, async () => {
    const result = await change();
    appendDurably(file, { time: new Date().toISOString(), event: 'credential-change', ...describe(result), operator: operator() });
    return result;
  });
}

export interface OperatorCall<R> {
  /** The API operation the command performs (src/http/routes): its name and permission go on the record. */
  readonly op: Operation;
  readonly projectId: string;
  /** Calls the service, with the request context the record is made from. */
  readonly run: (ctx: RequestContext) => Promise<R> | R;
  /**
   * The operation makes material in the HSM (create-key, rotate-on-demand). Its service writes its
   * record first and its material next, in separate transactions, so that a crash leaves
   * something reconciliation finds: it must not run inside the tool's own transaction, whose
   * rollback would forget the record and leave the material behind.
   */
  readonly makesMaterial: boolean;
}

/** The outcome of an audited operation: its response, or the KmsError it ended with. */
export type CallOutcome<R> = { readonly ok: true; readonly response: R } | { readonly ok: false; readonly error: KmsError };

/**
 * Runs a key operation as the API would for an operator (every permission, in the project), and
 * records it in audit-cli.log with the API's record shape (`"event":"operation"`; principal
 * `{kind: "operator", id: <user>}`; status the HTTP status the API would have answered; client
 * null; `operator` the user and pid), refusals included.
 *
 * A change that only touches the database runs under the write lock with its record, which is
 * synced before it commits: if the record cannot be written the change is rolled back. One that
 * makes HSM material first checks under the lock that the chain opens for appending (so that an
 * unwritable chain refuses it before it runs, as the service answers 503 KMS.0104), runs, then
 * appends its record; a failure of that last write is reported (exit code 1) with the change made, as the
 * service's own chain can only keep such a record pending.
 */
export async function auditedOperation<R>(db: Database.Database, file: string, call: OperatorCall<R>): Promise<CallOutcome<R>> {
  const who = operator();
  const ctx: RequestContext = {
    projectId: call.projectId,
    requestId: randomUUID(),
    principal: { kind: 'operator', id: who.user, projectId: call.projectId, actions: ['kms:*'] },
    actedOn: { keyId: null },
    access: { by: 'permission' },
  };
  const time = new Date().toISOString();
  const started = process.hrtime.bigint();
  const attempt = async (): Promise<CallOutcome<R>> => {
    try {
      return { ok: true, response: await call.run(ctx) };
    } catch (error) {
      return { ok: false, error: error instanceof KmsError ? error : new KmsError('KMS.0103', { cause: error }) };
    }
  };
  const record = (outcome: CallOutcome<R>): AuditRecord => ({
    time,
    event: 'operation',
    request_id: ctx.requestId,
    principal: { kind: 'operator', id: who.user },
    project_id: call.projectId,
    action: call.op.name,
    permission: call.op.action,
    key_id: ctx.actedOn.keyId,
    status: outcome.ok ? 200 : outcome.error.status,
    result: outcome.ok ? 'OK' : outcome.error.code,
    latency_ms: Math.round(Number(process.hrtime.bigint() - started) / 10_000) / 100,
    client: null,
    operator: who,
  });
  if (!call.makesMaterial) {
    return underWriteLock(db, async () => {
      const outcome = await attempt();
      appendDurably(file, record(outcome));
      return outcome;
    });
  }
  // Opening the chain for appending fails on a missing or read-only file or directory.
  await underWriteLock(db, () => new AuditLog(file).close());
  const outcome = await attempt();
  try {
    await underWriteLock(db, () => appendDurably(file, record(outcome)));
  } catch (error) {
    const made = outcome.ok && ctx.actedOn.keyId ? ` (key ${ctx.actedOn.keyId})` : '';
    throw new Error(`${call.op.name} was done${made}, but its record could not be written to ${file}`, { cause: error });
  }
  return outcome;
}
