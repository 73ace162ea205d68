import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import bodyParser from 'body-parser';
import { KmsError } from '../errors';

/** A request's body: the parsed JSON (undefined when none was sent) and the exact bytes received. */
export interface ReceivedBody {
  readonly parsed: unknown;
  /** What the signature covers; empty when no JSON body was read. */
  readonly raw: Buffer;
  /** Why the body could not be read (a KmsError, or body-parser's error), if it could not. */
  readonly error?: unknown;
}

const NO_BYTES = Buffer.alloc(0);

/**
 * A refusal of ours thrown from body-parser's `verify` hook, which wraps whatever it catches;
 * the KmsError inside is what the client gets.
 */
class BodyRefusal extends Error {
  constructor(readonly refusal: KmsError) {
    super(refusal.message);
  }
}

/**
 * Reads JSON bodies with body-parser (size limit, gzip/deflate/br, strict JSON), keeping the
 * exact bytes for the signature check. A body must be UTF-8 (RFC 8259 §8.1): another charset is
 * KMS.0214, and bytes that are not UTF-8 are KMS.0202, for decoding would turn each invalid
 * sequence into U+FFFD, and two different bodies (two encryption contexts) into the same text.
 * Never rejects: a body it cannot read is reported in `error`, so that the caller decides when to
 * answer it.
 */
export function bodyReader(limitBytes: number): (req: IncomingMessage, res: ServerResponse) => Promise<ReceivedBody> {
  const rawBodies = new WeakMap<IncomingMessage, Buffer>();
  const parseJson = bodyParser.json({
    limit: limitBytes,
    verify: (req: IncomingMessage, _res: ServerResponse, bytes: Buffer, charset: string) => {
      rawBodies.set(req, bytes);
      if (charset !== 'utf-8') throw new BodyRefusal(new KmsError('KMS.0214', { detail: 'Send the body in UTF-8.' }));
      if (!isUtf8(bytes)) throw new BodyRefusal(new KmsError('KMS.0202', { detail: 'The body is not valid UTF-8.' }));
    },
  });
  return (req, res) =>
    new Promise((resolve) => {
      parseJson(req, res, (parseError?: unknown) => {
        const parsed = (req as IncomingMessage & { body?: unknown }).body;
        const error = parseError instanceof BodyRefusal ? parseError.refusal : parseError;
        resolve({ parsed, raw: rawBodies.get(req) ?? NO_BYTES, ...(error === undefined ? {} : { error }) });
      });
    });
}
