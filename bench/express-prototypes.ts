import { IncomingMessage, ServerResponse } from 'node:http';
import type { Express } from 'express';

/**
 * An experiment of the benchmark's HTTP-layer run, not used by the service (it made each request
 * dearer, see README, Benchmark): node:http request and response classes whose objects are born
 * with the Express app's prototypes (app.request, app.response), for
 * `createServer({ IncomingMessage, ServerResponse })`.
 *
 * Express gives every request its API by swapping the prototypes of node's req and res
 * (`Object.setPrototypeOf` in app.handle). V8 then moves the objects off their optimised shapes,
 * and node's own code on them (writeHead, addListener, the body's read) runs many times slower,
 * with more garbage (expressjs/express#5998, nodejs/node#37457). When the objects already have
 * those prototypes, the swap changes nothing; but constructing them through Reflect.construct with
 * another new.target is itself slow in V8 (OutgoingMessage's constructor led the profile).
 */
export function expressPrototypes(app: Express): { IncomingMessage: typeof IncomingMessage; ServerResponse: typeof ServerResponse } {
  function ExpressRequest(this: unknown, ...args: unknown[]): object {
    return Reflect.construct(IncomingMessage, args, ExpressRequest);
  }
  ExpressRequest.prototype = app.request;
  function ExpressResponse(this: unknown, ...args: unknown[]): object {
    return Reflect.construct(ServerResponse, args, ExpressResponse);
  }
  ExpressResponse.prototype = app.response;
  // Constructors as node:http calls them (`new`), with the prototypes above: what the types cannot say.
  return {
    IncomingMessage: ExpressRequest as unknown as typeof IncomingMessage,
    ServerResponse: ExpressResponse as unknown as typeof ServerResponse,
  };
}
