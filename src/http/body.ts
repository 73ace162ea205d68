import type { IncomingMessage, ServerResponse } from 'node:http';
import bodyParser from 'body-parser';

/** A request's body: the parsed JSON (undefined when none was sent) and the exact bytes received. */
export interface ReceivedBody {
  readonly parsed: unknown;
  /** What the signature covers; empty when no JSON body was read. */
  readonly raw: Buffer;
  /** Why the body could not be read (body-parser's error), if it could not. */
  readonly error?: unknown;
}

const NO_BYTES = Buffer.alloc(0);

/**
 * Reads JSON bodies with body-parser (size limit, charsets, gzip/deflate/br, strict JSON), keeping
 * the exact bytes for the signature check. Never rejects: a body it cannot read is reported in
 * `error`, so that the caller decides when to answer it.
 */
export function bodyReader(limitBytes: number): (req: IncomingMessage, res: ServerResponse) => Promise<ReceivedBody> {
  const rawBodies = new WeakMap<IncomingMessage, Buffer>();
  const parseJson = bodyParser.json({
    limit: limitBytes,
    verify: (req: IncomingMessage, _res: ServerResponse, bytes: Buffer) => {
      rawBodies.set(req, bytes);
    },
  });
  return (req, res) =>
    new Promise((resolve) => {
      parseJson(req, res, (error?: unknown) => {
        const parsed = (req as IncomingMessage & { body?: unknown }).body;
        resolve({ parsed, raw: rawBodies.get(req) ?? NO_BYTES, ...(error === undefined ? {} : { error }) });
      });
    });
}
