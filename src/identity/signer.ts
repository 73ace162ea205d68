import { createHmac, hash, timingSafeEqual } from 'node:crypto';

/**
 * SDK-HMAC-SHA256, the request signature of the official Huawei Cloud SDKs, checked from the
 * server's side. The algorithm (huawei-kms-api.md §3a):
 *
 *   CanonicalRequest = METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n hex(SHA-256(body))
 *   StringToSign     = "SDK-HMAC-SHA256" \n X-Sdk-Date \n hex(SHA-256(CanonicalRequest))
 *   Signature        = hex(HMAC-SHA256(secret key, StringToSign))
 *
 * The SDKs differ in which headers they sign, so the list is always taken from the request.
 */

export const ALGORITHM = 'SDK-HMAC-SHA256';

export interface SignedRequest {
  readonly method: string;
  /** The path as received, still percent-encoded, without the query. */
  readonly path: string;
  /** The raw query string, without '?', or ''. */
  readonly query: string;
  /** Header values by lower-case name, as received. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body bytes as received (a compressed body as sent, not decompressed). */
  readonly body: Buffer;
}

export interface AuthorizationHeader {
  readonly accessKey: string;
  /** Lower-case header names, in the order the client signed them. */
  readonly signedHeaders: string[];
  readonly signature: string;
}

/**
 * The most headers one signature may name. The SDKs sign four or five; the bound keeps a client
 * from making the server canonicalise thousands of names per request.
 */
export const MAX_SIGNED_HEADERS = 64;

/**
 * Parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b, Signature=hex`; undefined when malformed.
 * A parameter given twice is malformed, not "the last one wins": which Access= a server honours
 * must not depend on how it reads the header. So is a header named twice, or more than
 * {@link MAX_SIGNED_HEADERS} of them.
 */
export function parseAuthorization(value: string): AuthorizationHeader | undefined {
  const match = /^SDK-HMAC-SHA256\s+(.*)$/.exec(value.trim());
  if (!match) return undefined;
  const fields = new Map<string, string>();
  for (const part of match[1]!.split(',')) {
    const at = part.indexOf('=');
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    if (fields.has(name)) return undefined;
    fields.set(name, part.slice(at + 1).trim());
  }
  const accessKey = fields.get('Access');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!accessKey || !signedHeaders || !signature || !/^[0-9a-f]{64}$/i.test(signature)) return undefined;
  const names = signedHeaders.split(';').map((name) => name.toLowerCase());
  if (names.length > MAX_SIGNED_HEADERS || new Set(names).size !== names.length) return undefined;
  // Header names are tokens (RFC 9110 §5.1, as Node accepts them lower-cased).
  if (!names.every((name) => /^[a-z0-9-]+$/.test(name))) return undefined;
  return { accessKey, signedHeaders: names, signature: signature.toLowerCase() };
}

/**
 * Whether the request carries every header the signature names. An absent one would be signed as
 * empty, so a signature could claim to cover a header (X-Project-Id, say) that was never sent.
 * Own properties only: Node's header object inherits from Object.prototype ("constructor", ...).
 */
export function hasSignedHeaders(request: SignedRequest, signedHeaders: readonly string[]): boolean {
  return signedHeaders.every((name) => Object.hasOwn(request.headers, name) && request.headers[name] !== undefined);
}

/** RFC 3986 encoding: unreserved characters kept, everything else %XX with upper-case hex. */
function encode(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // A malformed escape is signed as sent; the signature then simply does not match.
  }
}

/** Paths that encoding leaves as they are: unreserved characters and '/' only (every API path). */
const PLAIN_PATH = /^[A-Za-z0-9\-._~/]*$/;

/** The path decoded, split on '/', each segment re-encoded, and always a trailing '/'. */
export function canonicalUri(path: string): string {
  const uri = PLAIN_PATH.test(path) ? path : decode(path).split('/').map(encode).join('/');
  return uri.endsWith('/') ? uri : `${uri}/`;
}

/**
 * What Node's legacy url.parse escapes in a path on its own (its "autoEscape" characters). The
 * official Node.js core signs `url.parse(url).pathname`, where a path parameter given raw (as its
 * KmsClient gives delete-tag's tag key) already has these as %XX, and then encodes that again:
 * a tag key `a b` travels as `a%20b` and is signed as `a%2520b`. Other characters (`环境`) it
 * leaves raw, encodes once, and signs as canonicalUri makes them; so do the Python SDK (unquote,
 * then quote) and curl-like clients.
 */
const NODE_AUTO_ESCAPED = /[{}|\\^`<>"' \r\n\t]/;
const NODE_AUTO_ESCAPED_ALL = new RegExp(NODE_AUTO_ESCAPED.source, 'g');

/**
 * A slash escaped in a path segment. The core puts a path parameter into the URL as it is given,
 * so a key_id holding '/' (an alias, `alias/orders`) is one segment only when the caller escapes
 * it (`alias%2Forders`, encodeURIComponent's); the core then signs that segment as it was given,
 * encoded once more: every escape in it doubled (`alias%252Forders`).
 */
const ESCAPED_SLASH = /%2F/i;

/**
 * The canonical URI the official Node.js core signs for this path, when it is not canonicalUri's
 * (a segment holds an escaped slash, or the decoded path a character url.parse escapes on its
 * own); undefined otherwise.
 */
export function nodeCoreCanonicalUri(path: string): string | undefined {
  if (PLAIN_PATH.test(path)) return undefined;
  if (!ESCAPED_SLASH.test(path) && !NODE_AUTO_ESCAPED.test(decode(path))) return undefined;
  const segment = (raw: string): string =>
    ESCAPED_SLASH.test(raw)
      ? encode(raw)
      : encode(decode(raw).replace(NODE_AUTO_ESCAPED_ALL, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`));
  const uri = path.split('/').map(segment).join('/');
  return uri.endsWith('/') ? uri : `${uri}/`;
}

/** Pairs sorted by key, then by value, each side encoded, joined with '&'. */
export function canonicalQuery(query: string): string {
  if (!query) return '';
  const pairs = query
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf('=');
      const key = decode((at < 0 ? pair : pair.slice(0, at)).replace(/\+/g, ' '));
      const value = at < 0 ? '' : decode(pair.slice(at + 1).replace(/\+/g, ' '));
      return [encode(key), encode(value)] as const;
    });
  pairs.sort(([k1, v1], [k2, v2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : v1 < v2 ? -1 : v1 > v2 ? 1 : 0));
  return pairs.map(([key, value]) => `${key}=${value}`).join('&');
}

function headerValue(headers: SignedRequest['headers'], name: string): string {
  // Own properties only: Node's header object inherits from Object.prototype.
  const value = Object.hasOwn(headers, name) ? headers[name] : undefined;
  return (Array.isArray(value) ? value.join(',') : (value ?? '')).trim();
}

/** `uri`: the canonical URI signed, canonicalUri's by default (nodeCoreCanonicalUri's is the other). */
export function canonicalRequest(request: SignedRequest, signedHeaders: readonly string[], uri: string = canonicalUri(request.path)): string {
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${headerValue(request.headers, name)}\n`).join('');
  const payloadHash = hash('sha256', request.body, 'hex');
  return [
    request.method.toUpperCase(),
    uri,
    canonicalQuery(request.query),
    canonicalHeaders,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

export function stringToSign(canonical: string, sdkDate: string): string {
  return `${ALGORITHM}\n${sdkDate}\n${hash('sha256', canonical, 'hex')}`;
}

export function sign(secretKey: Buffer | string | SigningKey, request: SignedRequest, signedHeaders: readonly string[], sdkDate: string, uri?: string): string {
  const text = stringToSign(canonicalRequest(request, signedHeaders, uri), sdkDate);
  return secretKey instanceof SigningKey ? secretKey.hmac(text) : createHmac('sha256', secretKey).update(text).digest('hex');
}

/** SHA-256's block size: HMAC pads (or first hashes) the key to this length (RFC 2104). */
const BLOCK_BYTES = 64;

/**
 * A secret key made ready to sign with: the two padded keys of HMAC-SHA256 (RFC 2104), computed
 * once per credential, so that a signature is two one-shot SHA-256 hashes. Node's Hmac sets up an
 * OpenSSL HMAC context for every request, which the service's profile showed as the largest single
 * part of its signature check (issue 21). As secret as the key it is made from: never logged.
 */
export class SigningKey {
  readonly #inner: Buffer;
  readonly #outer: Buffer;

  constructor(secretKey: Buffer) {
    const key = secretKey.length > BLOCK_BYTES ? hash('sha256', secretKey, 'buffer') : secretKey;
    this.#inner = Buffer.alloc(BLOCK_BYTES, 0x36);
    this.#outer = Buffer.alloc(BLOCK_BYTES, 0x5c);
    for (let i = 0; i < key.length; i++) {
      this.#inner[i]! ^= key[i]!;
      this.#outer[i]! ^= key[i]!;
    }
  }

  /** hex(HMAC-SHA256(key, text)), as createHmac would give it. */
  hmac(text: string): string {
    const inner = hash('sha256', Buffer.concat([this.#inner, Buffer.from(text, 'utf8')]), 'buffer');
    return hash('sha256', Buffer.concat([this.#outer, inner]), 'hex');
  }
}

/** Constant-time comparison of the expected and the received signature. */
export function signaturesMatch(expected: string, received: string): boolean {
  const a = Buffer.from(expected, 'hex');
  const b = Buffer.from(received, 'hex');
  return a.length === 32 && b.length === 32 && timingSafeEqual(a, b);
}

/** Parses X-Sdk-Date (`YYYYMMDDTHHMMSSZ`, UTC) into milliseconds, or undefined. */
export function parseSdkDate(value: string): number | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  const time = Date.UTC(y, mo - 1, d, h, mi, s);
  return Number.isNaN(time) ? undefined : time;
}
