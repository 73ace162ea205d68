/**
 * express-openapi-validator is run patched (patches/, applied by patch-package on every install):
 * its route lookup compiles each route's path-to-regexp matcher once, not once per route scanned
 * on every request (upstream PR #1217, "perf: cache route matchers"), and tries only the routes
 * whose last path segment the request's can match, not every route's expression in turn (issue
 * 21), and, once the document has loaded, runs its middlewares at once instead of each through a
 * promise of its own (issue 21). If the patch stops applying (a new validator version, an install without the postinstall),
 * these fail.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler } from 'express';
import * as pathToRegexpModule from 'path-to-regexp';
import { contractValidator } from '../../src/http/contract';
import { loadOpenApiDocument } from '../../src/openapi-spec';

let server: Server;
let base: string;
const compiles = jest.spyOn(pathToRegexpModule, 'pathToRegexp');

beforeAll(async () => {
  const app = express();
  // As the service sets them (src/app.ts): the cache is keyed by these options too.
  app.enable('case sensitive routing');
  app.enable('strict routing');
  app.use(express.json());
  // Whether what follows runs in this same turn: a promise anywhere in between lets the microtask run first.
  app.use((_req, res, next) => {
    res.locals.turn = 'same';
    queueMicrotask(() => (res.locals.turn = 'later'));
    next();
  });
  app.use(...contractValidator(loadOpenApiDocument(), { validateResponses: false }).handlers);
  app.post(['/v1.0/:project_id/kms/:operation', '/v1.0/:project_id/kms/:operation/'], (req, res) => {
    res.setHeader('x-turn', String(res.locals.turn));
    res.json({ matched: req.openapi?.openApiRoute });
  });
  const refusal: ErrorRequestHandler = (error: { status?: number }, _req, res, _next) => {
    res.status(error.status ?? 500).json({ status: error.status });
  };
  app.use(refusal);
  server = createServer(app).listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  compiles.mockRestore();
  server.close();
  await once(server, 'close');
});

function post(operation: string, body: unknown): Promise<Response> {
  return fetch(`${base}/v1.0/project1/kms/${operation}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('the patched route lookup of express-openapi-validator', () => {
  it('compiles no route matcher for a request once the routes it scans were compiled', async () => {
    // The first requests compile the matchers of the routes scanned before each one's match.
    const first = await post('re-encrypt', {});
    expect(first.status).toBe(400);
    await post('describe-key', { key_id: 'x' });
    compiles.mockClear();
    for (let i = 0; i < 5; i++) {
      const response = await post('describe-key', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f' });
      expect(response.status).toBe(200);
      await expect(response.json()).resolves.toEqual({ matched: '/v1.0/{project_id}/kms/describe-key' });
    }
    expect(await post('re-encrypt', {}).then((response) => response.status)).toBe(400);
    // Unpatched, each of these six requests compiles a matcher for every route it scans (dozens).
    expect(compiles).not.toHaveBeenCalled();
  });

  it("tries only the routes a path's last segment can match, and still matches the same ones", async () => {
    // The expressions of openapi.yaml's routes, as the validator makes them (an Express path, the service's options).
    const routeSources = new Set(
      Object.keys(loadOpenApiDocument().paths).map((route) => pathToRegexpModule.pathToRegexp(route.replace(/\{([^}]+)\}/g, ':$1'), { sensitive: true }).regexp.source),
    );
    compiles.mockClear();
    const execs = jest.spyOn(RegExp.prototype, 'exec');
    try {
      const tried = async (operation: string, suffix = ''): Promise<{ status: number; matched: unknown; tried: number }> => {
        execs.mockClear();
        const response = await fetch(`${base}/v1.0/project1/kms/${operation}${suffix}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"key_id":"0d0466b0-e727-4d9c-b35d-f84bb474a37f"}' });
        const routeExecs = execs.mock.contexts.filter((regexp) => routeSources.has((regexp as RegExp).source)).length;
        return { status: response.status, matched: response.status === 200 ? ((await response.json()) as { matched: unknown }).matched : undefined, tried: routeExecs };
      };
      // describe-key is the 12th of openapi.yaml's routes, derive-shared-secret the 33rd: the
      // unpatched lookup tries each route before them. Patched: the root `/` and `/docs/{file}`
      // (ending in a parameter, tried for every path) and the one route ending in the segment.
      for (const operation of ['describe-key', 'derive-shared-secret']) {
        const result = await tried(operation);
        expect(result.tried).toBeGreaterThan(0);
        expect(result.tried).toBeLessThanOrEqual(3);
      }
      expect(await tried('describe-key')).toMatchObject({ status: 200, matched: '/v1.0/{project_id}/kms/describe-key' });
      // A trailing slash is matched as upstream matches it (path-to-regexp 8 allows one).
      expect(await tried('describe-key', '/')).toMatchObject({ status: 200, matched: '/v1.0/{project_id}/kms/describe-key' });
      expect((await tried('describe-key', '//')).status).toBe(404);
      expect((await tried('Describe-Key')).status).toBe(404);
      expect((await tried('no-such-operation')).status).toBe(404);
    } finally {
      execs.mockRestore();
    }
  });

  it('runs its middlewares at once once the document has loaded, without a promise between them', async () => {
    await post('describe-key', { key_id: 'x' });
    const response = await post('describe-key', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f' });
    expect(response.status).toBe(200);
    // Unpatched, each middleware waits for the document's promise: the route runs turns later.
    expect(response.headers.get('x-turn')).toBe('same');
  });

  it('still refuses what the contract does not describe, and checks each body', async () => {
    expect((await post('no-such-operation', {})).status).toBe(404);
    expect((await post('no-such-operation', {})).status).toBe(404);
    expect((await post('describe-key', {})).status).toBe(400);
    expect((await post('describe-key', { key_id: 7 })).status).toBe(400);
    const params = await fetch(`${base}/v1.0/project1/kms/describe-key?x=1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"key_id":"k"}' });
    expect(params.status).toBe(400);
  });
});
