import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler } from 'express';
import { jsonBody } from '../../src/http/body';
import { KmsError } from '../../src/errors';
import '../../src/http/locals';

/**
 * src/http/body.ts reads the common body (uncompressed JSON in UTF-8 with a Content-Length) itself,
 * and leaves every other to express.json. A client must not be able to tell the paths apart: each
 * body here is sent both ways, once as the SDKs send it (the fast path) and once with a quoted
 * charset parameter that means the same (body-parser's), and what the app makes of it must be the
 * same: the parsed body, the bytes kept for the signature, the refusal's code and message.
 */
const LIMIT = 64;
let server: Server;
let port: number;

beforeAll(async () => {
  const app = express();
  app.use(jsonBody(LIMIT));
  app.use((req, res) => {
    const { parsed, raw, error } = res.locals.body;
    res.json({ parsed: parsed ?? null, body: req.body ?? null, raw: raw.toString('base64'), error: error ? `${error.code} ${error.publicMessage}` : null });
  });
  const refused: ErrorRequestHandler = (error: unknown, _req, res, _next) => {
    res.status(299).json({ refused: error instanceof KmsError ? `${error.code} ${error.publicMessage}` : String(error) });
  };
  app.use(refused);
  server = createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.close();
  await once(server, 'close');
});

function send(body: Buffer, contentType: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-type': contentType, 'content-length': String(body.length) } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${text}`));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const bodies: Array<[string, Buffer]> = [
  ['an object', Buffer.from('{"key_id":"k","n":[1,2]}')],
  ['an array', Buffer.from('[1]')],
  ['whitespace before', Buffer.from(' \t\r\n{"a":1}')],
  ['a byte-order mark', Buffer.from('\uFEFF{"a":1}')],
  ['two byte-order marks', Buffer.from('\uFEFF\uFEFF{"a":1}')],
  ['a number', Buffer.from('1')],
  ['a string', Buffer.from('"x"')],
  ['null', Buffer.from('null')],
  ['a non-JSON-whitespace before', Buffer.from('\u00a0{"a":1}')],
  ['JSON that does not parse', Buffer.from('{"a":')],
  ['trailing garbage', Buffer.from('{"a":1}x')],
  ['bytes that are not UTF-8', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d])],
  ['an overlong encoding', Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d])],
  ['UTF-8 text', Buffer.from('{"a":"é€𝄞"}')],
  ['a lone surrogate escaped', Buffer.from('{"a":"\\ud800"}')],
  ['at the limit', Buffer.from(`{"a":"${'x'.repeat(LIMIT - 8)}"}`)],
  ['over the limit', Buffer.from(`{"a":"${'x'.repeat(LIMIT)}"}`)],
];

describe('the JSON body, read by the fast path or by express.json', () => {
  it.each(bodies)('%s: the same outcome both ways', async (_name, body) => {
    const fast = await send(body, 'application/json');
    const viaBodyParser = await send(body, 'application/json; charset="utf-8"');
    expect(fast).toBe(viaBodyParser);
    // Also as the Python and Node SDKs type it.
    expect(await send(body, 'application/json;charset=UTF-8')).toBe(viaBodyParser);
  });

  it('the outcomes differ from body to body (the comparison can fail)', async () => {
    const outcomes = await Promise.all(bodies.map(([, body]) => send(body, 'application/json')));
    expect(outcomes[0]).toBe(`200 ${JSON.stringify({ parsed: { key_id: 'k', n: [1, 2] }, body: { key_id: 'k', n: [1, 2] }, raw: bodies[0]![1].toString('base64'), error: null })}`);
    expect(outcomes[5]).toMatch(/"error":"KMS\.0202 /);
    expect(outcomes[11]).toContain('The body is not valid UTF-8.');
    expect(outcomes[16]).toMatch(/^299 \{"refused":"KMS\.0203 /);
    expect(new Set(outcomes).size).toBeGreaterThan(10);
  });
});
