/**
 * Request ids and the access log: an incoming X-Request-Id is honoured when it is acceptable, and
 * every request gets one info line (operation, status, ms, request id, principal), never a body;
 * KMS_ACCESS_LOG=off turns it off.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, loadConfig } from '../../src/config';
import { eventually } from '../helpers/eventually';
import { useTestService, type TestService } from '../helpers/service';

/** The JSON lines the service logged since `from`. */
function logLines(t: TestService, from = 0): Array<Record<string, unknown>> {
  return t.logs.lines.slice(from).flatMap((chunk) => chunk.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>));
}

/** Access-log lines arrive when the response has finished: wait for the one of `requestId`. */
function accessLineOf(t: TestService, requestId: string): Promise<Record<string, unknown> | undefined> {
  return eventually(`the access-log line of request ${requestId}`, () => logLines(t).find((line) => line.msg === 'request' && line.requestId === requestId));
}

describe('request ids and the access log', () => {
  const t = useTestService();

  it("takes the caller's X-Request-Id into the response, the error body, the audit trail and the access log", async () => {
    const id = 'trace-2b1f:Proxy_7.a';
    const refused = await t.client().raw('describe-key', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ key_id: '00000000-0000-4000-8000-000000000000' }),
    });
    expect(refused.status).toBe(404);
    expect(refused.headers.get('x-request-id')).toBe(id);
    expect(refused.body.request_id).toBe(id);
    await new Promise((resolve) => setImmediate(resolve));
    const audited = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter((line) => line.includes(`"request_id":"${id}"`));
    expect(audited).toHaveLength(1);
    expect(await accessLineOf(t, id)).toMatchObject({ operation: 'describe-key', status: 404, code: 'KMS.0207' });
  });

  it.each([
    ['too long', 'a'.repeat(129)],
    ['a space', 'two words'],
    ['markup', '<script>'],
    ['a line break attempt', 'abc%0d%0aX-Injected: 1'],
    ['two headers joined', 'a, b'],
  ])('replaces an X-Request-Id with %s by a fresh one', async (_what, sent) => {
    const response = await t.client().raw('list-keys', { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': sent }, body: '{}' });
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
  });

  it('accepts 128 characters, not 129', async () => {
    const longest = 'A'.repeat(128);
    const response = await t.client().raw('list-keys', { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': longest }, body: '{}' });
    expect(response.headers.get('x-request-id')).toBe(longest);
  });

  it("names the aliases' operations by name, where their path does not (…/kms/aliases, …/kms/alias/associate)", async () => {
    const client = t.client();
    const keyId = (await client.call('create-key', { key_alias: 'logged-aliases' })).body.key_info.key_id as string;
    const created = await client.call('aliases', { key_id: keyId, alias: 'alias/logged' });
    expect(await accessLineOf(t, created.headers.get('x-request-id')!)).toMatchObject({ operation: 'create-alias', method: 'POST', status: 201 });
    const listed = await client.raw('aliases', { method: 'GET' });
    expect(await accessLineOf(t, listed.headers.get('x-request-id')!)).toMatchObject({ operation: 'list-aliases', method: 'GET', status: 200 });
    const moved = await client.call('alias/associate', { alias: 'alias/logged', target_key_id: keyId });
    expect(await accessLineOf(t, moved.headers.get('x-request-id')!)).toMatchObject({ operation: 'associate-alias', status: 200 });
  });

  it('logs one info line per request with operation, status, ms, request id and principal, and never a body', async () => {
    const client = t.client();
    const created = await client.call('create-key', { key_alias: 'logged' });
    const keyId: string = created.body.key_info.key_id;
    const dataKey = await client.call('create-datakey', { key_id: keyId, encryption_context: { table: 'secret-table-name' } });
    expect(dataKey.status).toBe(200);
    const requestId = dataKey.headers.get('x-request-id')!;
    const line = await accessLineOf(t, requestId);
    const tokenId = (await t.service.credentials.list('project-a')).find((entry) => entry.actions.join() === 'kms:*')!.id;
    expect(line).toMatchObject({
      level: 30,
      msg: 'request',
      operation: 'create-datakey',
      method: 'POST',
      status: 200,
      ms: expect.any(Number),
      requestId,
      principal: { kind: 'token', id: tokenId, project: 'project-a' },
    });
    expect(logLines(t).filter((entry) => entry.msg === 'request' && entry.requestId === requestId)).toHaveLength(1);
    // Never a body: neither what was sent nor what was answered.
    for (const secret of [dataKey.body.plain_text, dataKey.body.cipher_text, 'secret-table-name', await t.token()]) expect(t.logs.text).not.toContain(secret);
  });

  it('logs a request refused before authentication too, without a principal', async () => {
    const refused = await t.client().raw('list-keys', { method: 'POST', headers: { 'content-type': 'application/json', 'x-auth-token': 'not-a-token' }, body: '{}' });
    expect(refused.status).toBe(401);
    const line = await accessLineOf(t, refused.headers.get('x-request-id')!);
    expect(line).toMatchObject({ operation: 'list-keys', status: 401 });
    expect(line!.principal).toBeUndefined();
    expect(t.logs.text).not.toContain('not-a-token');
  });
});

describe('KMS_ACCESS_LOG=off', () => {
  const t = useTestService({ env: { KMS_ACCESS_LOG: 'off' } });

  it('logs no line per request (the audit trail still records the operation)', async () => {
    const from = t.logs.lines.length;
    const listed = await t.client().call('list-keys');
    expect(listed.status).toBe(200);
    // A line that would have been logged is there by the next response's end: make one more request.
    await t.client().call('list-keys');
    expect(logLines(t, from).filter((line) => line.msg === 'request')).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(readFileSync(t.config.auditLogPath, 'utf8')).toContain(listed.headers.get('x-request-id'));
  });

  it('takes on and off only', () => {
    expect(() => loadConfig({ KMS_ACCESS_LOG: 'no' })).toThrow(ConfigError);
    expect(loadConfig({ KMS_ACCESS_LOG: 'on' }).accessLog).toBe(true);
    expect(loadConfig({}).accessLog).toBe(true);
  });
});
