import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inSeries } from '../../src/http/series';

/**
 * inSeries runs the API's middleware as one layer of the app's router: it must hand on to the
 * app exactly as the router did with them mounted one by one (src/http/series.ts). Each case
 * runs the same handlers both ways, through a real app, and compares what the client gets.
 */
type Mount = (app: express.Express, handlers: RequestHandler[]) => void;
const oneByOne: Mount = (app, handlers) => {
  for (const handler of handlers) app.use(handler);
};
const asSeries: Mount = (app, handlers) => {
  app.use(inSeries(handlers));
};

async function answer(mount: Mount, handlers: RequestHandler[]): Promise<string> {
  const app = express();
  mount(app, handlers);
  app.use((_req: Request, res: Response) => {
    res.status(404).send(`after the chain: ${String(res.locals.trail)}`);
  });
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).send(`error ${error instanceof Error ? error.message : String(error)}: ${String(res.locals.trail)}`);
  });
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port, path: '/v1.0/p/kms/op' }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve(`${res.statusCode} ${body}`));
      })
        .on('error', reject)
        .end();
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

const step = (name: string): RequestHandler => (_req, res, next) => {
  res.locals.trail = `${res.locals.trail ?? ''}${name}`;
  next();
};

const cases: Array<[string, RequestHandler[]]> = [
  ['all call next: on to the app', [step('a'), step('b'), step('c')]],
  ['one answers: the rest do not run', [step('a'), (_req, res) => void res.send('answered'), step('c')]],
  ['next(error): the rest are skipped, to the error handler', [step('a'), (_req, _res, next) => next(new Error('bad')), step('c')]],
  ['a throw', [step('a'), () => { throw new Error('thrown'); }, step('c')]],
  ['a rejected promise', [step('a'), async () => { throw new Error('rejected'); }, step('c')]],
  ['an async handler that calls next', [step('a'), async (_req, _res, next) => { await Promise.resolve(); next(); }, step('c')]],
  ["next('route') counts as next()", [step('a'), (_req, _res, next) => next('route'), step('c')]],
  ['no handler', []],
];

describe('inSeries', () => {
  it.each(cases)('%s: as the router mounted one by one', async (_name, handlers) => {
    const expected = await answer(oneByOne, handlers);
    expect(await answer(asSeries, handlers)).toBe(expected);
  });

  it('the cases differ from each other (the comparison can fail)', async () => {
    const answers = await Promise.all(cases.map(([, handlers]) => answer(asSeries, handlers)));
    expect(answers).toEqual(['404 after the chain: abc', '200 answered', '500 error bad: a', '500 error thrown: a', '500 error rejected: a', '404 after the chain: ac', '404 after the chain: ac', '404 after the chain: undefined']);
  });
});
