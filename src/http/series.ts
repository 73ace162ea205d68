import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Middleware run one after the other as one, as Express's router would run them mounted with
 * `app.use` at `/` in this order, without the router's work between them: no path matched per
 * handler, no per-layer match object and closure (issue 21: the API's nine-odd handlers cost the
 * router's `next` about as much as the rest of Express's work on a request). As in the router:
 * a handler's `next(error)` (or its throw, or the rejection of the promise it returns) skips the
 * rest and goes on to the app's error handling; `next()` after the last goes on to the app's next
 * layer; `next('route')` counts as `next()`.
 */
export function inSeries(handlers: readonly RequestHandler[]): RequestHandler {
  return (req: Request, res: Response, done: NextFunction) => {
    let at = 0;
    const fail = (error: unknown): void => done(error ?? new Error('Rejected promise'));
    const next = (error?: unknown): void => {
      if (error !== undefined && error !== null && error !== 'route') {
        done(error);
        return;
      }
      const handler = handlers[at++];
      if (handler === undefined) {
        done();
        return;
      }
      try {
        const returned: unknown = handler(req, res, next);
        if (isThenable(returned)) returned.then(undefined, fail);
      } catch (thrown) {
        done(thrown);
      }
    };
    next();
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
