import type { ReceivedBody } from './body';
import type { Exchange } from './request-log';

declare module 'express-serve-static-core' {
  /** Our per-request state, typed: Express's res.locals. */
  interface Locals {
    /** Set first (request-log.ts). */
    exchange: Exchange;
    /** Set by the body middleware (body.ts). */
    body: ReceivedBody;
  }
}
