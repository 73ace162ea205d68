import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { appendDurably, AuditLog, cliAuditLogFile } from '../audit/audit-log';
import type { Config } from '../config';
import type { AuditRecord, CredentialChangeRecord, StoreCopyRecord } from '../audit/audit-records';
import type { MetadataStore } from '../domain/repositories';
import { KmsError } from '../errors';
import { actedOnFields } from '../http/audit-trail';
import type { Operation } from '../http/operation';
import type { CredentialService } from '../identity/credentials';
import type { RequestContext } from '../kms/context';
import type { KeyServices } from '../kms/key-services';
import { storeInTransaction } from '../store/in-transaction';

/**
 * The tool's audit chain, audit-cli.log: credential changes, and the key operations it runs, each
 * recorded as the API records that operation. Every append happens under the store's bootstrap
 * lock named CHAIN_LOCK: it orders concurrent runs of the tool (and the service's first start),
 * so no two extend the chain from the same line, and it is released if the process dies.
 */

const CHAIN_LOCK = 'cli-audit';

/** The tool's chain on this machine: audit-cli.log of the data directory, whose lines name the instance (KMS_INSTANCE_ID). */
export interface CliChain {
  readonly file: string;
  readonly instance: string;
}

/** The chain of the data directory of `config`. */
export function cliChain(config: Pick<Config, 'dataDir' | 'instanceId'>): CliChain {
  return { file: cliAuditLogFile(config.dataDir), instance: config.instanceId };
}

/** Where an audited change runs: the store, and the services built over a view of it (Core.servicesOver). */
export interface AuditedStore {
  readonly store: MetadataStore;
  servicesOver(store: MetadataStore): { readonly credentials: CredentialService; readonly keys: KeyServices };
}

type Services = ReturnType<AuditedStore['servicesOver']>;

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

/** Runs `work` under the chain's lock, nothing else. */
function underChainLock<T>(at: AuditedStore, work: () => Promise<T>): Promise<T> {
  return at.store.bootstrap.exclusive(CHAIN_LOCK, work);
}

/**
 * Runs `work` under the chain's lock and in one store transaction, with services whose every read
 * and write is that transaction's: it commits if `work` returns, and rolls back if it throws.
 */
function inTransactionUnderChainLock<T>(at: AuditedStore, work: (services: Services) => Promise<T>): Promise<T> {
  return underChainLock(at, () =>
    at.store.withTransaction(async (tx) => {
      const services = at.servicesOver(storeInTransaction(at.store, tx));
      try {
        return await work(services);
      } finally {
        services.keys.close();
        services.credentials.close();
      }
    }),
  );
}

/**
 * Makes a credential change and appends its record in one step: the change is made in a store
 * transaction, and the record is written and synced before it commits; if the record cannot be
 * written, the change is rolled back, so no change goes unrecorded.
 */
export function auditedCredentialChange<T>(
  at: AuditedStore,
  chain: CliChain,
  change: (credentials: CredentialService) => Promise<T>,
  describe: (result: T) => Omit<CredentialChangeRecord, 'time' | 'event' | 'operator'>,
): Promise<T> {
  return inTransactionUnderChainLock(at, async ({ credentials }) => {
    const result = await change(credentials);
    appendDurably(chain.file, { time: new Date().toISOString(), event: 'credential-change', ...describe(result), operator: operator() }, chain.instance);
    return result;
  });
}

/**
 * Runs a change made beside the store's services (`kms store copy`) under the chain's lock. The
 * change calls `record` with what it is about to commit, before it commits: the record is written
 * and synced then, and a record that cannot be written fails the change, so none goes unrecorded.
 * As with the credential changes, a COMMIT that fails after the record (the database gone at that
 * moment) leaves a record of a change that did not land: the trail errs towards recording.
 */
export function auditedStoreCopy<T>(
  store: Pick<MetadataStore, 'bootstrap'>,
  chain: CliChain,
  copy: (record: (described: Pick<StoreCopyRecord, 'to' | 'rows'>) => void) => Promise<T>,
): Promise<T> {
  return store.bootstrap.exclusive(CHAIN_LOCK, () =>
    copy((described) => appendDurably(chain.file, { time: new Date().toISOString(), event: 'store-copy', ...described, result: 'OK', operator: operator() }, chain.instance)),
  );
}

export interface OperatorCall<R> {
  /** The API operation the command performs (src/http/routes): its name and permission go on the record. */
  readonly op: Operation;
  readonly projectId: string;
  /**
   * Calls the service, with the request context the record is made from, through `services`: those
   * of the transaction the change runs in, or (makesMaterial) those over the store itself.
   */
  readonly run: (ctx: RequestContext, services: KeyServices) => Promise<R> | R;
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
 * A change that only touches the store runs in one transaction with its record, which is synced
 * before it commits: if the record cannot be written the change is rolled back. One that makes
 * HSM material first checks under the chain's lock that the chain opens for appending (so that an
 * unwritable chain refuses it before it runs, as the service answers 503 KMS.0104), runs, then
 * appends its record; a failure of that last write is reported (exit code 1) with the change made, as the
 * service's own chain can only keep such a record pending.
 */
export async function auditedOperation<R>(at: AuditedStore & { readonly keys: KeyServices }, chain: CliChain, call: OperatorCall<R>): Promise<CallOutcome<R>> {
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
  const attempt = async (services: KeyServices): Promise<CallOutcome<R>> => {
    try {
      return { ok: true, response: await call.run(ctx, services) };
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
    // The key, and what else the API's record names (the aliases of the alias operations, ...).
    ...actedOnFields(ctx.actedOn),
    // As the API answers it: 204 for the operations that answer without a body (the tag writes).
    status: outcome.ok ? (call.op.status ?? 200) : outcome.error.status,
    result: outcome.ok ? 'OK' : outcome.error.code,
    latency_ms: Math.round(Number(process.hrtime.bigint() - started) / 10_000) / 100,
    client: null,
    operator: who,
  });
  if (!call.makesMaterial) {
    return inTransactionUnderChainLock(at, async (services) => {
      const outcome = await attempt(services.keys);
      appendDurably(chain.file, record(outcome), chain.instance);
      return outcome;
    });
  }
  // Opening the chain for appending fails on a missing or read-only file or directory.
  await underChainLock(at, async () => new AuditLog(chain.file).close());
  const outcome = await attempt(at.keys);
  try {
    await underChainLock(at, async () => appendDurably(chain.file, record(outcome), chain.instance));
  } catch (error) {
    const made = outcome.ok && ctx.actedOn.keyId ? ` (key ${ctx.actedOn.keyId})` : '';
    throw new Error(`${call.op.name} was done${made}, but its record could not be written to ${chain.file}`, { cause: error });
  }
  return outcome;
}
