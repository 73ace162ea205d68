/**
 * Requests node:http refuses before they reach the API, sent over raw sockets: each still gets the
 * API's error body (checked against openapi.yaml), the X-Request-Id, and HTTP's status for it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { KmsError } from '../../src/errors';
import { jsonBody } from '../../src/http/body';
import { errorBodyCheck } from '../../src/http/contract';
import { protocolRefusals } from '../../src/http/protocol-refusals';
import { replies } from '../../src/http/reply';
import { createLogger } from '../../src/logger';
import { loadOpenApiDocument } from '../../src/openapi-spec';
import { RawConnection, rawRequest, type RawResponse } from '../helpers/raw-http';
import { useTestService } from '../helpers/service';

let host: string;
/** project-a's X-Auth-Token, for the raw requests. */
let token: string;
const errorProblem = errorBodyCheck(loadOpenApiDocument());

const t = useTestService();

beforeAll(async () => {
  host = new URL(t.service.url).host;
  token = await t.token('project-a');
});

const LIST_KEYS = '/v1.0/project-a/kms/list-keys';

/** A list-keys request as an SDK would send it, with its token, as raw text. */
function listKeys(extraHeaders = ''): string {
  const body = '{}';
  return `POST ${LIST_KEYS} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nX-Auth-Token: ${token}\r\nContent-Length: ${body.length}\r\n${extraHeaders}\r\n${body}`;
}

/** Asserts the status, and the API's error body with `code` and the response's request id. */
function expectApiError(response: RawResponse, status: number, code: string): void {
  let body: { error_code?: string; request_id?: string } | undefined;
  try {
    body = JSON.parse(response.text);
  } catch {
    body = undefined;
  }
  expect({ status: response.status, code: body?.error_code }).toEqual({ status, code });
  expect(errorProblem(body)).toBeUndefined();
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
  expect(body?.request_id).toBe(response.headers.get('x-request-id'));
}

describe('what the HTTP parser refuses: the API error body, then the connection closes', () => {
  const malformed: Array<[string, () => string, number, string]> = [
    ['a bare CR in a header value', () => `POST ${LIST_KEYS} HTTP/1.1\r\nHost: ${host}\r\nX-Odd: a\rb\r\nContent-Length: 0\r\n\r\n`, 400, 'KMS.0214'],
    ['a NUL in a header value', () => `POST ${LIST_KEYS} HTTP/1.1\r\nHost: ${host}\r\nX-Odd: a\0b\r\nContent-Length: 0\r\n\r\n`, 400, 'KMS.0214'],
    [
      'both Transfer-Encoding and Content-Length',
      () => `POST ${LIST_KEYS} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 7\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      400,
      'KMS.0214',
    ],
    ['a Content-Length that is not a number', () => `POST ${LIST_KEYS} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: abc\r\n\r\n{}`, 400, 'KMS.0214'],
    [
      'a chunk size that is not hex (the request already under way)',
      () => `POST ${LIST_KEYS} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      400,
      'KMS.0214',
    ],
    ['a 20 KB header', () => `POST ${LIST_KEYS} HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\nContent-Length: 0\r\n\r\n`, 431, 'KMS.0203'],
    ['a request line that is not HTTP', () => 'HELLO\r\n\r\n', 400, 'KMS.0214'],
  ];

  it.each(malformed)('%s', async (_label, request, status, code) => {
    const response = await rawRequest(t.service.url, request());
    try {
      expectApiError(response, status, code);
      expect(response.headers.get('connection')).toBe('close');
      await response.connection.closed();
    } finally {
      response.connection.close();
    }
  });

  it('answers a broken request that follows a good one on the same connection after the good one', async () => {
    const response = await rawRequest(t.service.url, `${listKeys()}POST ${LIST_KEYS} HTTP/1.1\r\nHost: ${host}\r\nX-Odd: a\0b\r\n\r\n`);
    try {
      expect(response.status).toBe(200);
      expect(JSON.parse(response.text)).toHaveProperty('keys');
      expectApiError(await response.connection.response(), 400, 'KMS.0214');
      await response.connection.closed();
    } finally {
      response.connection.close();
    }
  });
});

describe('what node:http refuses by itself: answered as the API answers', () => {
  it('HTTP/1.1 without Host: 400 KMS.0214, and the connection closes', async () => {
    const response = await rawRequest(t.service.url, `POST ${LIST_KEYS} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`);
    try {
      expectApiError(response, 400, 'KMS.0214');
      await response.connection.closed();
    } finally {
      response.connection.close();
    }
  });

  it('HTTP/1.0 without Host is still served', async () => {
    const response = await rawRequest(t.service.url, listKeys().replace('HTTP/1.1', 'HTTP/1.0').replace(`Host: ${host}\r\n`, ''));
    try {
      expect(response.status).toBe(200);
    } finally {
      response.connection.close();
    }
  });

  it('Expect: teapot: 417 KMS.0214, and the connection stays open for the next request', async () => {
    const response = await rawRequest(t.service.url, listKeys('Expect: teapot\r\n'));
    try {
      expectApiError(response, 417, 'KMS.0214');
      response.connection.write(listKeys());
      const next = await response.connection.response();
      expect(next.status).toBe(200);
      expect(JSON.parse(next.text)).toHaveProperty('keys');
    } finally {
      response.connection.close();
    }
  });

  it('Expect: 100-continue still gets 100 Continue, then the answer', async () => {
    const connection = await RawConnection.open(t.service.url);
    try {
      const head = listKeys('Expect: 100-continue\r\n');
      connection.write(head.slice(0, head.length - 2)); // the headers, not yet the body
      expect((await connection.response()).status).toBe(100);
      connection.write('{}');
      expect((await connection.response()).status).toBe(200);
    } finally {
      connection.close();
    }
  });

  it('CONNECT: 405 KMS.0215, and the connection closes', async () => {
    const response = await rawRequest(t.service.url, `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    try {
      expectApiError(response, 405, 'KMS.0215');
      await response.connection.closed();
    } finally {
      response.connection.close();
    }
  });
});

describe('a request that does not arrive in time: 408 KMS.0214', () => {
  // The service keeps Node's timeouts (60 s for headers, 300 s for a request): a server with the
  // same refusals and short timeouts shows what a client that stalls gets.
  let server: Server;
  let url: string;

  beforeAll(async () => {
    const logger = createLogger('silent');
    const protocol = protocolRefusals(logger);
    const reply = replies(logger);
    const app = express();
    app.use(jsonBody(1024), (_req, res) => reply.error(res, { requestId: 'f'.repeat(32) }, new KmsError('KMS.0207')));
    server = createServer({ requireHostHeader: false, headersTimeout: 300, requestTimeout: 300, connectionsCheckingInterval: 50 }, (req, res) => {
      if (!protocol.refuses(req, res)) app(req, res);
    });
    protocol.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each([
    ['headers that never end', `POST ${LIST_KEYS} HTTP/1.1\r\nHost: x\r\nX-Slow: `],
    ['a body that never ends (the request already under way)', `POST ${LIST_KEYS} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{`],
  ])('%s', async (_label, request) => {
    const response = await rawRequest(url, request);
    try {
      expectApiError(response, 408, 'KMS.0214');
      await response.connection.closed();
    } finally {
      response.connection.close();
    }
  });
});

it('still serves, and logged no server error', async () => {
  const response = await rawRequest(t.service.url, listKeys());
  response.connection.close();
  expect(response.status).toBe(200);
  expect(t.logs.text).not.toContain('"level":50');
});
