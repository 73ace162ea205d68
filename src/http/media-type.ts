import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { KmsError } from '../errors';

/**
 * A request body's one media type: application/json, in any case, with at most the parameter
 * charset=utf-8 (the Python and Node SDKs send `application/json;charset=UTF-8`).
 */
const JSON_BODY = /^application\/json[ \t]*(?:;[ \t]*charset=(?:utf-8|"utf-8")[ \t]*)?$/i;

/** What the validator sees as the Content-Type of every JSON body. */
const CANONICAL_JSON = 'application/json';

/**
 * Settles a request's Content-Type before express-openapi-validator's request check sees it (it
 * runs after the validator has matched the operation, see contract.ts). The validator compiles
 * and keeps a request validator for each method, route and whole Content-Type header, parameters
 * included, and never forgets one: a client choosing a new header for every request would grow
 * the process's memory without bound (and pay a compile each time). So it only ever sees
 * `application/json`, or no Content-Type at all:
 * - an operation with a body: a JSON Content-Type becomes `application/json`; any other is
 *   KMS.0214 here, as the validator answers a media type it does not take; none stays none (the
 *   validator then refuses a required body, KMS.0214 too);
 * - an operation without one (the GETs): the header is dropped, for nothing reads a body there.
 */
export function mediaTypeCheck(): RequestHandler {
  return (req: Request, _res: Response, next: NextFunction) => {
    // The validator's preprocessing leaves null where the contract describes no body.
    const body: unknown = req.openapi?.schema.requestBody;
    if (typeof body !== 'object' || body === null) {
      delete req.headers['content-type'];
    } else {
      const type = req.headers['content-type'];
      if (type !== undefined) {
        if (!JSON_BODY.test(type)) {
          next(new KmsError('KMS.0214', { detail: 'Send the body as application/json.' }));
          return;
        }
        req.headers['content-type'] = CANONICAL_JSON;
      }
    }
    next();
  };
}
