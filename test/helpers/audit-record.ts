import type { AuditRecord } from '../../src/audit/audit-records';

/** An operation's audit record as the HTTP layer makes one (a list-keys by a token), named by its request id. */
export function operationRecord(requestId: string): AuditRecord {
  return {
    time: '2026-12-07T00:00:00.000Z',
    event: 'operation',
    request_id: requestId,
    principal: { kind: 'token', id: 'tok-0123456789abcdef' },
    project_id: 'default',
    action: 'list-keys',
    permission: 'kms:cmk:list',
    key_id: null,
    status: 200,
    result: 'OK',
    latency_ms: 1,
    client: '127.0.0.1',
  };
}
