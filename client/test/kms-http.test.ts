/**
 * The HTTP layer against tiny local servers (no KMS needed): what it refuses to do with an answer.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { EnvelopeClient, KmsRequestError } from '../src';

const KEY_ID = '0d0466b0-e727-4d9c-b35d-f84bb474a37f';

function listen(handler: (request: IncomingMessage, body: string, respond: (status: number, headers: Record<string, string>, body?: string) => void) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => handler(request, body, (status, headers, text = '') => response.writeHead(status, headers).end(text)));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })));
}

const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

test('a 307 is not followed: nothing (body, token) reaches its target, and no failover happens', async () => {
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  // An attacker's host: it would answer a data key of its choosing.
  const target = await listen((request, body, respond) => {
    received.push({ headers: request.headers, body });
    respond(200, { 'content-type': 'application/json' }, JSON.stringify({ plain_text: '00'.repeat(32), cipher_text: 'ab'.repeat(40) }));
  });
  const redirecting = await listen((request, _body, respond) => respond(307, { location: `${target.url}${request.url ?? ''}` }));
  servers.push(target.server, redirecting.server);
  const client = new EnvelopeClient({
    kms: { endpoints: [redirecting.url, target.url], projectId: 'p', keyId: KEY_ID, auth: { token: 'the-token' } },
    cache: false,
  });
  const error = await client.encrypt('x').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(KmsRequestError);
  expect((error as KmsRequestError).status).toBe(307);
  expect(received).toEqual([]);
});

test('no credential is reachable by util.inspect or JSON.stringify of the client or its keyring', () => {
  const secrets = { accessKey: 'AK-visible-is-fine', secretKey: 'SK-must-not-show-0123456789', securityToken: 'STS-must-not-show-abcdef' };
  const signed = new EnvelopeClient({ kms: { endpoints: ['http://127.0.0.1:1'], projectId: 'p', keyId: KEY_ID, auth: secrets } });
  const tokened = new EnvelopeClient({ kms: { endpoints: ['http://127.0.0.1:1'], projectId: 'p', keyId: KEY_ID, auth: { token: 'TOKEN-must-not-show-xyz' } } });
  for (const client of [signed, tokened]) {
    const shown = [
      inspect(client, { depth: Infinity, showHidden: true }),
      inspect(client.keyring, { depth: Infinity, showHidden: true }),
      JSON.stringify(client.keyring),
      JSON.stringify(Object.entries(client.keyring)),
    ].join('\n');
    expect(shown).toContain('p/');
    for (const secret of ['SK-must-not-show', 'STS-must-not-show', 'TOKEN-must-not-show']) expect(shown).not.toContain(secret);
    client.close();
  }
});
