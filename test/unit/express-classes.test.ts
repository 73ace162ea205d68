import express, { type Request, type Response } from 'express';
import { Agent, createServer, IncomingMessage, request as httpRequest, ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expressHttpClasses, httpConstructorsAreFunctions } from '../../src/http/express-classes';

/**
 * The service's requests and responses are born with its Express app's prototypes
 * (src/http/express-classes.ts), so that Express's per-request prototype swap changes nothing. They
 * must behave exactly as node's own: each case asks the same of a server with node's classes and
 * of one with these, and compares the answers.
 */
interface Seen {
  readonly bornWithAppPrototypes: boolean;
  readonly nodeClasses: boolean;
}

function appAndServer(born: boolean): { server: Server; seen: Seen[] } {
  const seen: Seen[] = [];
  const app = express();
  app.disable('etag');
  app.use(express.json());
  app.post('/echo', (req: Request, res: Response) => {
    res.status(201).json({ body: req.body as unknown, path: req.path, host: req.hostname });
  });
  app.head('/head', (_req: Request, res: Response) => {
    res.set('x-head', 'yes').send('not sent for a HEAD');
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).send('none');
  });
  const server = createServer(born ? expressHttpClasses(app) : {}, (req, res) => {
    seen.push({
      bornWithAppPrototypes: Object.getPrototypeOf(req) === app.request && Object.getPrototypeOf(res) === app.response,
      nodeClasses: req instanceof IncomingMessage && res instanceof ServerResponse,
    });
    app(req, res);
  });
  return { server, seen };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Status, the headers but Date, and the body of each request, in turn, on one keep-alive connection. */
async function answers(port: number, requests: ReadonlyArray<{ method: string; path: string; body?: string }>): Promise<string[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const out: string[] = [];
  try {
    for (const { method, path, body } of requests) {
      out.push(
        await new Promise<string>((resolve, reject) => {
          const req = httpRequest({ host: '127.0.0.1', port, method, path, agent, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
            let text = '';
            res.on('data', (chunk: Buffer) => (text += chunk.toString()));
            res.on('end', () => {
              const { date: _date, ...headers } = res.headers;
              resolve(`${res.statusCode} ${JSON.stringify(headers)} ${text}`);
            });
          });
          req.on('error', reject);
          req.end(body);
        }),
      );
    }
  } finally {
    agent.destroy();
  }
  return out;
}

const REQUESTS = [
  { method: 'POST', path: '/echo', body: '{"key_id":"k","n":[1,2]}' },
  { method: 'POST', path: '/echo', body: '{"broken"' },
  { method: 'HEAD', path: '/head' },
  { method: 'GET', path: '/elsewhere?x=1' },
  { method: 'POST', path: '/echo', body: '{}' },
];

describe('requests and responses born with the Express app prototypes', () => {
  it('are made so on this Node: its http constructors are plain functions (else the service falls back to Express swapping prototypes, slower)', () => {
    expect(httpConstructorsAreFunctions()).toBe(true);
  });

  it('reach the app already with its prototypes, still node:http objects, and are answered exactly as node’s own', async () => {
    const plain = appAndServer(false);
    const born = appAndServer(true);
    try {
      const expected = await answers(await listen(plain.server), REQUESTS);
      const got = await answers(await listen(born.server), REQUESTS);
      expect(got).toEqual(expected);
      expect(expected[0]).toMatch(/^201 .*"body":\{"key_id":"k","n":\[1,2\]\}/);
      expect(expected[2]).toMatch(/^200 .*"x-head":"yes".* $/);
      expect(born.seen).toEqual(REQUESTS.map(() => ({ bornWithAppPrototypes: true, nodeClasses: true })));
      // Without them, Express has to swap the prototypes of every request and response.
      expect(plain.seen.every((seen) => !seen.bornWithAppPrototypes && seen.nodeClasses)).toBe(true);
    } finally {
      await Promise.all([plain.server, born.server].map((server) => new Promise((resolve) => server.close(resolve))));
    }
  });
});
