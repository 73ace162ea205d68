import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { finished } from 'node:stream';
import bodyParser from 'body-parser';
import { KmsError } from '../errors';

/** A request's body: the parsed JSON (undefined when none was sent) and the exact bytes received. */
export interface ReceivedBody {
  readonly parsed: unknown;
  /**
   * What the signature covers: the bytes as they came over the wire (a compressed body as sent,
   * before its Content-Encoding is undone); empty when no body was read.
   */
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
 * Reads JSON bodies with body-parser (size limit, gzip/deflate/br, strict JSON), keeping the
 * bytes received for the signature check: the SDKs sign the bytes they send, so a compressed body
 * is verified as it was sent, not as it decompresses. A body must be UTF-8 (RFC 8259 §8.1): another charset is
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
      // Taken before body-parser starts reading, so that no chunk passes unseen.
      const wire = isEncoded(req) ? wireBytes(req, limitBytes) : undefined;
      parseJson(req, res, (parseError?: unknown) => {
        const parsed = (req as IncomingMessage & { body?: unknown }).body;
        const error = parseError instanceof BodyRefusal ? parseError.refusal : parseError;
        if (!wire) {
          resolve({ parsed, raw: rawBodies.get(req) ?? NO_BYTES, ...(error === undefined ? {} : { error }) });
          return;
        }
        // The decompressed body can be complete before the last compressed bytes are in.
        finished(req, () => {
          const raw = wire();
          if (raw instanceof KmsError) resolve({ parsed, raw: NO_BYTES, error: error ?? raw });
          else resolve({ parsed, raw, ...(error === undefined ? {} : { error }) });
        });
      });
    });
}
