import type { ReceivedBody } from './body';
import type { ApiExchange } from './request-log';

declare module 'express-serve-static-core' {
  /** Our per-request state, typed: Express's res.locals. */
  interface Locals {
    /** Set first (request-log.ts). */
    exchange: ApiExchange;
    /** Set by the body middleware (body.ts). */
    body: ReceivedBody;
  }
}
