import type { IncomingMessage } from 'node:http';
import type { AuditRecord } from '../audit/audit-log';
import type { Principal } from '../kms/context';
import type { Operation } from './operation';

/** When an operation started, for its audit record. */
export interface AuditStart {
  readonly time: string;
  readonly started: bigint;
}

export function auditStart(): AuditStart {
  return { time: new Date().toISOString(), started: process.hrtime.bigint() };
}

/** The key a request is about: the one it names, or the one create-key made. */
function keyIdOf(body: unknown, result: unknown): string | null {
  const named = (body as { key_id?: unknown } | undefined)?.key_id;
  if (typeof named === 'string') return named;
  const created = (result as { key_info?: { key_id?: unknown } } | undefined)?.key_info?.key_id;
  return typeof created === 'string' ? created : null;
}

/** The audit record of one request that reached an operation: identifiers and outcome only. */
export function auditRecord(
  start: AuditStart,
  req: IncomingMessage,
  body: unknown,
  op: Operation,
  outcome: { projectId: string; principal: Principal | undefined; requestId: string; status: number; result: string; response?: unknown },
): AuditRecord {
  return {
    time: start.time,
    request_id: outcome.requestId,
    principal: outcome.principal ? { kind: outcome.principal.kind, id: outcome.principal.id } : { kind: 'none', id: '' },
    project_id: outcome.projectId,
    action: op.name,
    permission: op.action,
    key_id: keyIdOf(body, outcome.response),
    status: outcome.status,
    result: outcome.result,
    latency_ms: Math.round(Number(process.hrtime.bigint() - start.started) / 10_000) / 100,
    client: req.socket.remoteAddress ?? null,
  };
}
