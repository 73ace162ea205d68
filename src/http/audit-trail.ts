import type { AuditRecord } from '../audit/audit-records';
import type { AuthFailure } from '../audit/auth-failure-audit';
import type { AuthenticationFailure } from '../identity/authenticator';
import type { ActedOn } from '../kms/context';
import type { Operation } from './operation';
import type { ApiExchange } from './request-log';

/** When an operation started, for its audit record. */
export interface AuditStart {
  readonly time: string;
  readonly started: bigint;
}

export function auditStart(): AuditStart {
  return { time: new Date().toISOString(), started: process.hrtime.bigint() };
}

/**
 * The audit record of one request that reached an operation: identifiers and outcome only. The key
 * and grants are those the service resolved in the caller's project (`actedOn`, from the request
 * context), never a value of the request body: a client cannot make the record name another key,
 * or a string of its choosing. The client is the peer taken when the request arrived (the
 * exchange's), not the socket's now: the client may have reset the connection since.
 */
export function auditRecord(
  start: AuditStart,
  exchange: ApiExchange,
  op: Operation,
  outcome: { projectId: string; actedOn: ActedOn | undefined; status: number; result: string },
): AuditRecord {
  const { actedOn } = outcome;
  const { principal } = exchange;
  return {
    time: start.time,
    event: 'operation',
    request_id: exchange.requestId,
    principal: principal ? { kind: principal.kind, id: principal.id } : { kind: 'none', id: '' },
    project_id: outcome.projectId,
    action: op.name,
    permission: op.action,
    ...actedOnFields(actedOn),
    status: outcome.status,
    result: outcome.result,
    latency_ms: Math.round(Number(process.hrtime.bigint() - start.started) / 10_000) / 100,
    client: exchange.peer.address,
  };
}

/**
 * What the service acted on, as a record names it: the key (null when none), and the fields only
 * some operations set. The API's records and the command-line tool's (src/cli/cli-audit.ts) both
 * take them from here, so that the tool's record of an operation is the API's.
 */
export function actedOnFields(
  actedOn: ActedOn | undefined,
): Pick<AuditRecord, 'key_id' | 'source_key_id' | 'algorithm' | 'aliases' | 'previous_key_id' | 'key_spec' | 'blob' | 'grant_id' | 'via_grant'> {
  return {
    key_id: actedOn?.keyId ?? null,
    ...(actedOn?.sourceKeyId === undefined ? {} : { source_key_id: actedOn.sourceKeyId }),
    ...(actedOn?.algorithm === undefined ? {} : { algorithm: actedOn.algorithm }),
    ...(actedOn?.aliases === undefined ? {} : { aliases: actedOn.aliases }),
    ...(actedOn?.previousKeyId === undefined ? {} : { previous_key_id: actedOn.previousKeyId }),
    ...(actedOn?.keySpec === undefined ? {} : { key_spec: actedOn.keySpec }),
    ...(actedOn?.blob === undefined ? {} : { blob: actedOn.blob }),
    ...(actedOn?.grantId === undefined ? {} : { grant_id: actedOn.grantId }),
    ...(actedOn?.viaGrantId === undefined ? {} : { via_grant: actedOn.viaGrantId }),
  };
}

/**
 * The records of one request: its own (auditRecord), then one per grant that ended with the grant
 * it revoked or retired because it was made on that grant's authority (ActedOn.cascadedGrants):
 * the same request, naming that grant as `grant_id` and the grant it was made on as `cascaded_from`.
 */
export function auditRecords(record: AuditRecord, actedOn: ActedOn | undefined): AuditRecord[] {
  const cascaded = actedOn?.cascadedGrants ?? [];
  return [record, ...cascaded.map((child) => ({ ...record, grant_id: child.grantId, cascaded_from: child.parentGrantId }))];
}

/** What the audit trail keeps of a failed authentication: the claimed access key id, the peer (as it arrived), the reason. */
export function authFailureOf(exchange: ApiExchange, failure: AuthenticationFailure): AuthFailure {
  return {
    time: new Date().toISOString(),
    requestId: exchange.requestId,
    client: exchange.peer.address,
    claimed: failure.claimed,
    reason: failure.reason,
  };
}
