import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Express } from 'express';

/** What `createServer` takes to make its requests and responses (node:http's own when empty). */
export interface HttpClasses {
  readonly IncomingMessage?: typeof IncomingMessage;
  readonly ServerResponse?: typeof ServerResponse;
}

/** node:http's constructors as the plain functions they are (see {@link httpConstructorsAreFunctions}). */
type RequestInit = (this: IncomingMessage, socket: Socket) => void;
type ResponseInit = (this: ServerResponse, req: IncomingMessage, options?: unknown) => void;

/**
 * Whether node:http's IncomingMessage and ServerResponse are plain constructor functions (as in
 * Node 20), which a function can call on its own `this`, rather than ES classes, which cannot be
 * called without `new`.
 */
export function httpConstructorsAreFunctions(): boolean {
  const isClass = (fn: unknown): boolean => typeof fn !== 'function' || /^class\b/.test(Function.prototype.toString.call(fn));
  return !isClass(IncomingMessage) && !isClass(ServerResponse);
}

/**
 * Request and response classes for node:http whose objects are born with the Express app's
 * prototypes (app.request, app.response), for `createServer({ IncomingMessage, ServerResponse })`.
 *
 * Express gives each request its API by swapping the prototypes of node's req and res
 * (`Object.setPrototypeOf` in app.handle). On objects born elsewhere that swap moves them off
 * V8's optimised shapes, and node's own code on them runs slower; and everything they hold then
 * outlives the young generation's collections, to be promoted and left for the old generation's
 * (issue 21: in a bare Express app about 8 KB per request, a fifth of what it allocates, and the
 * scavenges that copy it and the mark-compacts that free it are the longest pauses a request
 * meets). Born with those prototypes, the swap finds them already set and changes nothing.
 *
 * Each constructor is node's, called on the new object as `new` would (node's are plain functions
 * that initialise `this`; Reflect.construct with another new.target, tried before, is itself slow
 * in V8). Should a Node release make them classes, node's own classes are kept (an empty answer)
 * and Express swaps as before: slower, never wrong; test/unit/express-classes.test.ts says so.
 */
export function expressHttpClasses(app: Express): HttpClasses {
  if (!httpConstructorsAreFunctions()) return {};
  const initRequest = IncomingMessage as unknown as RequestInit;
  const initResponse = ServerResponse as unknown as ResponseInit;
  // Named as node's (by their keys), so that stack traces name the objects as before.
  const born = {
    IncomingMessage: function (this: IncomingMessage, socket: Socket): void {
      initRequest.call(this, socket);
    },
    ServerResponse: function (this: ServerResponse, req: IncomingMessage, options?: unknown): void {
      initResponse.call(this, req, options);
    },
  };
  born.IncomingMessage.prototype = app.request;
  born.ServerResponse.prototype = app.response;
  // node:http calls them with `new`, as it would its own classes: what their types cannot say.
  return {
    IncomingMessage: born.IncomingMessage as unknown as typeof IncomingMessage,
    ServerResponse: born.ServerResponse as unknown as typeof ServerResponse,
  };
}
