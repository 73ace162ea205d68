import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RequestValidator } from 'express-openapi-validator/dist/middlewares/openapi.request.validator';
import { ResponseValidator } from 'express-openapi-validator/dist/middlewares/openapi.response.validator';
import { expectKmsError, fetchResponse, type KmsResponse } from '../helpers/client';
import { RawConnection, rawRequest } from '../helpers/raw-http';
import { useTestService } from '../helpers/service';

/**
 * The service's edge against what a client chooses: the Content-Type it sends cannot grow the
 * validator's caches (nor matter at all on a GET), and its peer address is taken when its
 * connection is accepted, so that hanging up at once cannot strip it from the audit trail.
 */

const UNKNOWN_KEY_ID = '0d0466b0-e727-4d9c-b35d-f84bb474a37f';

const t = useTestService();

function auditRecords(requestId: string): Array<Record<string, unknown>> {
  return readFileSync(t.config.auditLogPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.request_id === requestId);
}

/** The audit record of `requestId`, once the service has written it (the operation runs on after the client is gone). */
async function auditRecordOf(requestId: string): Promise<Record<string, unknown>> {
  for (let turn = 0; turn < 1000; turn++) {
    const found = auditRecords(requestId);
    if (found.length > 0) return found[0]!;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no audit record of ${requestId}`);
}

/** A whole HTTP/1.1 request to `operation` of project-a. */
function requestBytes(operation: string, requestId: string, headers: Record<string, string>, body: string): string {
  const { host } = new URL(t.service.url);
  const head = Object.entries({ host, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-request-id': requestId, ...headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return `POST /v1.0/project-a/kms/${operation} HTTP/1.1\r\n${head}\r\n${body}`;
}

/** Sends a whole request and resets the connection at once (TCP RST), without waiting for any answer. */
async function sendAndReset(requestId: string, headers: Record<string, string>, body: string): Promise<void> {
  const connection = await RawConnection.open(t.service.url);
  connection.socket.write(requestBytes('create-key', requestId, headers, body), () => connection.socket.resetAndDestroy());
}

describe('a client that resets its connection right after its request', () => {
  it('is still named by its address in the record of the operation it asked for', async () => {
    await sendAndReset('edge-reset-operation', { 'x-auth-token': await t.token('project-a') }, JSON.stringify({ key_alias: 'reset-at-once' }));
    expect(await auditRecordOf('edge-reset-operation')).toMatchObject({ event: 'operation', action: 'create-key', status: 200, client: expect.stringMatching(/127\.0\.0\.1/) });
  });

  it('is still named by its address in the record of its failed authentication', async () => {
    await sendAndReset('edge-reset-auth-failure', { 'x-auth-token': 'kmst-not-a-token' }, '{}');
    expect(await auditRecordOf('edge-reset-auth-failure')).toMatchObject({ event: 'authentication-failed', reason: 'unusable-token', client: expect.stringMatching(/127\.0\.0\.1/) });
  });

  it('is not served at all when it reset the connection before the service took it: no record without a client', async () => {
    // The service's event loop is held while another process connects, sends a whole request and
    // resets: the kernel completes the handshake and keeps the bytes, and the service accepts a
    // connection whose peer the kernel no longer tells.
    const script = `const s = require('node:net').connect(${new URL(t.service.url).port}, '127.0.0.1', () => s.write(process.argv[1], () => s.resetAndDestroy()));`;
    const bytes = requestBytes('describe-key', 'edge-reset-before-accept', { 'x-auth-token': await t.token('project-a') }, JSON.stringify({ key_id: UNKNOWN_KEY_ID }));
    expect(spawnSync(process.execPath, ['-e', script, bytes], { timeout: 20_000 }).status).toBe(0);
    // A later request's record is written after the earlier one's would have been.
    const later = await t.client('project-a').raw('describe-key', { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'edge-after-reset' }, body: JSON.stringify({ key_id: UNKNOWN_KEY_ID }) });
    expect(later.status).toBe(404);
    await auditRecordOf('edge-after-reset');
    expect(auditRecords('edge-reset-before-accept').filter((record) => record.client === null)).toEqual([]);
  });
});

/** How many entries the validator instance that ran as `spied`'s `this` keeps in its cache `field`. */
function cacheSize(spied: { mock: { contexts: unknown[] } }, field: string): number {
  const instances = new Set(spied.mock.contexts);
  expect(instances.size).toBe(1);
  const cache: unknown = Reflect.get([...instances][0] as object, field);
  if (typeof cache !== 'object' || cache === null) throw new Error(`no ${field} on the validator`);
  return Object.keys(cache).length;
}

/** Sends `count` requests, `parallel` at a time; each is checked as it is answered. */
async function flood(count: number, send: (i: number) => Promise<void>, parallel = 8): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) await send(next++);
    }),
  );
}

describe('Content-Type headers a client chooses', () => {
  const DISTINCT = 2000;

  it("leave the validator's compiled validators as they were, on the public GETs and on an authenticated POST, and are answered as before", async () => {
    const requestChecks = jest.spyOn(RequestValidator.prototype, 'validate');
    const responseChecks = jest.spyOn(ResponseValidator.prototype, '_getOrBuildValidator');
    try {
      // Another project's token: authenticated, so through the validator, and refused only after it.
      const describeKey = async (contentType: string): Promise<KmsResponse> =>
        fetchResponse(`${t.service.url}/v1.0/project-a/kms/describe-key`, {
          method: 'POST',
          headers: { 'content-type': contentType, 'x-auth-token': await t.token('project-b') },
          body: JSON.stringify({ key_id: UNKNOWN_KEY_ID }),
        });
      // Each route the flood takes answered once first: the response validator compiles a route's on its first answer.
      for (const path of ['/', '/v1.0']) expect((await fetchResponse(`${t.service.url}${path}`)).status).toBe(200);
      expectKmsError(await describeKey('application/json'), 403, 'KMS.0307');
      const sizes = (): { request: number; response: number } => ({ request: cacheSize(requestChecks, 'middlewareCache'), response: cacheSize(responseChecks, 'validatorsCache') });
      const before = sizes();

      await flood(DISTINCT, async (i) => {
        const response = await fetchResponse(`${t.service.url}/${i % 2 === 0 ? '' : 'v1.0'}`, { headers: { 'content-type': `text/plain; p=${i}` } });
        expect(response.status).toBe(200);
        expect(response.body.versions ?? response.body.version).toBeDefined();
      });
      expect(sizes()).toEqual(before);
      await flood(DISTINCT, async (i) => expectKmsError(await describeKey(`application/json; p=${i}`), 400, 'KMS.0214'));
      // The JSON media types the SDKs and other clients send are taken, whatever their case and spacing.
      for (const type of ['APPLICATION/JSON', 'application/json;charset=UTF-8', 'Application/Json ; Charset="utf-8"']) {
        expectKmsError(await describeKey(type), 403, 'KMS.0307');
      }

      expect(sizes()).toEqual(before);
    } finally {
      requestChecks.mockRestore();
      responseChecks.mockRestore();
    }
  }, 240_000);

  it('change nothing on a GET, even with a body: the body of a GET is not read', async () => {
    const { host } = new URL(t.service.url);
    const get = async (path: string, contentType: string): Promise<number> => {
      const body = '{"not": json';
      const response = await rawRequest(
        t.service.url,
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nX-Auth-Token: ${await t.token('project-a')}\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      response.connection.close();
      return response.status;
    };
    for (const path of ['/', '/v1.0/project-a/kms/user-quotas']) {
      expect({ path, statuses: [await get(path, 'application/json'), await get(path, 'text/plain; p=1')] }).toEqual({ path, statuses: [200, 200] });
    }
  });
});
