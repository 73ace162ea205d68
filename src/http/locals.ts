import type { OpenApiRequestMetadata } from 'express-openapi-validator/dist/framework/types';
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

  interface Request {
    /** The operation of openapi.yaml express-openapi-validator matched the request to, once it has (its metadata step). */
    openapi?: OpenApiRequestMetadata;
  }
}
