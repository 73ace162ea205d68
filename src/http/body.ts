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

/** A body whose bytes are not UTF-8 (RFC 8259 §8.1): the one refusal of both paths that says why. */
const NOT_UTF8 = (): KmsError => new KmsError('KMS.0202', { detail: 'The body is not valid UTF-8.' });

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

/** The Content-Types the fast path takes as they are sent (lower-cased): JSON in UTF-8, as every SDK sends it. */
const PLAIN_JSON_TYPES: ReadonlySet<string> = new Set(['application/json', 'application/json;charset=utf-8', 'application/json; charset=utf-8']);

/** JSON's whitespace (RFC 8259 §2), as body-parser's strict mode skips it before the first character. */
function firstNonWhitespace(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return text[i];
  }
  return undefined;
}

/**
 * The request's Content-Length when the fast path takes its body (see {@link readPlainJson}), else
 * undefined: an uncompressed body of 1 to `limitBytes` bytes, framed by a Content-Length (no
 * Transfer-Encoding), typed as JSON in UTF-8. Anything else (compressed, chunked, empty, oversized,
 * another charset or type) is left to express.json, which answers it as it always has.
 */
function plainJsonLength(req: IncomingMessage, limitBytes: number): number | undefined {
  const { headers } = req;
  if (headers['content-encoding'] !== undefined || headers['transfer-encoding'] !== undefined) return undefined;
  const type = headers['content-type'];
  if (type === undefined || !PLAIN_JSON_TYPES.has(type.toLowerCase())) return undefined;
  const length = headers['content-length'];
  if (length === undefined || !/^[1-9]\d{0,9}$/.test(length)) return undefined;
  const bytes = Number(length);
  return bytes <= limitBytes ? bytes : undefined;
}

/**
 * The common body read without body-parser's machinery (type-is, content-type, iconv-lite,
 * raw-body's stream plumbing: about 5% of a create-datakey's CPU for a 100-byte body, issue 21),
 * with express.json's outcome for it, refusal for refusal (the same code and message, so the
 * client cannot tell which path read its body): bytes that are not UTF-8 KMS.0202 (our
 * verify hook's), a first character other than `{` or `[` KMS.0202 (strict mode), JSON that does
 * not parse KMS.0202, a connection lost before the last byte KMS.0202; one leading byte-order mark
 * is dropped, as iconv-lite's decoding drops it. Node's parser frames the body by its
 * Content-Length, so no more and no fewer bytes arrive.
 */
function readPlainJson(req: IncomingMessage, length: number, done: (received: ReceivedBody) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let settled = false;
  const finish = (outcome: ReceivedBody): void => {
    if (settled) return;
    settled = true;
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onLost);
    req.off('close', onLost);
    done(outcome);
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    chunks.push(chunk);
  };
  const onLost = (): void => {
    finish({ parsed: undefined, raw: NO_BYTES, error: new KmsError('KMS.0202', { cause: new Error('the request ended before its body did') }) });
  };
  const onEnd = (): void => {
    const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received);
    if (received !== length) return finish({ parsed: undefined, raw, error: new KmsError('KMS.0202', { cause: new Error('the body is not as long as its Content-Length') }) });
    if (!isUtf8(raw)) return finish({ parsed: undefined, raw, error: NOT_UTF8() });
    let text = raw.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const first = firstNonWhitespace(text);
    if (first !== '{' && first !== '[') return finish({ parsed: undefined, raw, error: new KmsError('KMS.0202', { cause: new Error('strict JSON: the body is not an object or an array') }) });
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return finish({ parsed: undefined, raw, error: new KmsError('KMS.0202', { cause: error }) });
    }
    finish({ parsed, raw });
  };
  req.on('data', onData);
  req.once('end', onEnd);
  req.once('error', onLost);
  req.once('close', onLost);
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
      if (!isUtf8(bytes)) throw new BodyRefusal(NOT_UTF8());
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
    const plainLength = plainJsonLength(req, limitBytes);
    if (plainLength !== undefined) {
      readPlainJson(req, plainLength, (received) => {
        // As body-parser leaves it: the parsed body, or undefined when it could not be read.
        req.body = received.parsed;
        done(received);
      });
      return;
    }
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
