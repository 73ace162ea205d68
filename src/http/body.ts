import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished } from 'node:stream';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { KmsError, type KmsCode } from '../errors';

/** A request's body: the parsed JSON (undefined when none was sent) and the exact bytes received. */
export interface ReceivedBody {
  readonly parsed: unknown;
  /**
   * What the signature covers: the bytes as they came over the wire (a compressed body as sent,
   * before its Content-Encoding is undone); empty when no body was read.
   */
  readonly raw: Buffer;
  /** Why the body could not be read, if it could not. */
  readonly error?: KmsError;
}

const NO_BYTES = Buffer.alloc(0);

/**
 * A refusal of ours thrown from express.json's `verify` hook, which wraps whatever it catches;
 * the KmsError inside is what the client gets.
 */
class BodyRefusal extends Error {
  constructor(readonly refusal: KmsError) {
    super(refusal.message);
  }
}

/** What body-parser (express.json) passes to `next` for a body it cannot take (an http-errors error). */
interface BodyParserError {
  type?: string;
  status: number;
  expose: boolean;
}

function isBodyParserError(error: unknown): error is BodyParserError {
  if (typeof error !== 'object' || error === null) return false;
  const { status, expose } = error as BodyParserError;
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true;
}

/** By body-parser's error type (a Map: own entries only, whatever string the type holds). */
const BODY_PARSER_CODES: ReadonlyMap<string, KmsCode> = new Map([
  ['entity.too.large', 'KMS.0203'],
  ['entity.parse.failed', 'KMS.0202'],
  ['entity.verify.failed', 'KMS.0202'],
  ['encoding.unsupported', 'KMS.0214'],
  ['charset.unsupported', 'KMS.0214'],
  ['request.size.invalid', 'KMS.0202'],
]);

/** A body that cannot be read (bad JSON, a corrupt compressed stream, ...) is the caller's bad message. */
function bodyError(error: unknown): KmsError {
  if (error instanceof BodyRefusal) return error.refusal;
  if (error instanceof KmsError) return error;
  if (isBodyParserError(error)) {
    const code = (error.type && BODY_PARSER_CODES.get(error.type)) || (error.status === 413 ? 'KMS.0203' : 'KMS.0202');
    return new KmsError(code, { cause: error });
  }
  return new KmsError('KMS.0103', { cause: error });
}

/** Whether body-parser will undo a Content-Encoding, so that what it reads is not what was sent. */
function isEncoded(req: IncomingMessage): boolean {
  const encoding = req.headers['content-encoding'];
  return encoding !== undefined && encoding.toLowerCase() !== 'identity';
}

/**
 * The bytes of an encoded body as they arrive, at most `limitBytes` of them (KMS.0203 beyond),
 * read beside body-parser's decompression: it only ever shows the decompressed bytes.
 */
function wireBytes(req: IncomingMessage, limitBytes: number): () => Buffer | KmsError {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= limitBytes) chunks.push(chunk);
  });
  return () => (size > limitBytes ? new KmsError('KMS.0203') : Buffer.concat(chunks));
}

/**
 * Reads JSON bodies with express.json (body-parser: size limit, gzip/deflate/br, strict JSON) into
 * `res.locals.body`, keeping the bytes received for the signature check: the SDKs sign the bytes
 * they send, so a compressed body is verified as it was sent, not as it decompresses. A body must
 * be UTF-8 (RFC 8259 §8.1): another charset is KMS.0214, and bytes that are not UTF-8 are
 * KMS.0202, for decoding would turn each invalid sequence into U+FFFD, and two different bodies
 * (two encryption contexts) into the same text. An oversized body is refused at once (`next`
 * with KMS.0203); any other bad body is only noted in `res.locals.body.error`, to be answered once
 * the sender is known. A GET's body is not read at all.
 */
export function jsonBody(limitBytes: number): RequestHandler {
  const rawBodies = new WeakMap<IncomingMessage, Buffer>();
  const parseJson = express.json({
    limit: limitBytes,
    verify: (req: IncomingMessage, _res: ServerResponse, bytes: Buffer, charset: string) => {
      rawBodies.set(req, bytes);
      if (charset !== 'utf-8') throw new BodyRefusal(new KmsError('KMS.0214', { detail: 'Send the body in UTF-8.' }));
      if (!isUtf8(bytes)) throw new BodyRefusal(new KmsError('KMS.0202', { detail: 'The body is not valid UTF-8.' }));
    },
  });
  return (req: Request, res: Response, next: NextFunction) => {
    // The API's GETs have no body: one sent is not read (node:http discards it), so that neither
    // its bytes nor its Content-Type change anything.
    if (req.method === 'GET' || req.method === 'HEAD') {
      res.locals.body = { parsed: undefined, raw: NO_BYTES };
      next();
      return;
    }
    const done = (received: ReceivedBody): void => {
      res.locals.body = received;
      if (received.error?.code === 'KMS.0203') next(received.error);
      else next();
    };
    // Taken before body-parser starts reading, so that no chunk passes unseen.
    const wire = isEncoded(req) ? wireBytes(req, limitBytes) : undefined;
    parseJson(req, res, (parseError?: unknown) => {
      const parsed: unknown = req.body;
      const error = parseError === undefined ? undefined : bodyError(parseError);
      if (!wire) {
        done({ parsed, raw: rawBodies.get(req) ?? NO_BYTES, ...(error === undefined ? {} : { error }) });
        return;
      }
      // The decompressed body can be complete before the last compressed bytes are in.
      finished(req, () => {
        const raw = wire();
        if (raw instanceof KmsError) done({ parsed, raw: NO_BYTES, error: error ?? raw });
        else done({ parsed, raw, ...(error === undefined ? {} : { error }) });
      });
    });
  };
}
