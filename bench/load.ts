import autocannon from 'autocannon';
import { sign } from '../src/identity/signer';

export interface Credential {
  readonly projectId: string;
  readonly accessKey: string;
  readonly secretKey: string;
}

export interface LoadResult {
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly requests: number;
  readonly errors: number;
  readonly non2xx: number;
}

function sdkDate(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * The headers the official SDKs send for a POST, signed the way they sign (SDK-HMAC-SHA256 over
 * content-type, host, x-project-id and x-sdk-date, and the exact body), freshly for each request.
 */
export function signedHeaders(url: string, credential: Credential, path: string, body: string): Record<string, string> {
  const host = new URL(url).host;
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    host,
    'x-project-id': credential.projectId,
    'x-sdk-date': sdkDate(),
  };
  const signedHeaderNames = ['content-type', 'host', 'x-project-id', 'x-sdk-date'];
  const signature = sign(credential.secretKey, { method: 'POST', path, query: '', headers, body: Buffer.from(body) }, signedHeaderNames, headers['x-sdk-date']!);
  headers.authorization = `SDK-HMAC-SHA256 Access=${credential.accessKey}, SignedHeaders=${signedHeaderNames.join(';')}, Signature=${signature}`;
  return headers;
}

export interface LoadOptions {
  readonly url: string;
  readonly path: string;
  readonly body: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** A number of requests to send instead of a duration. */
  readonly amount?: number;
  /** Sign every request as the SDKs do; without it requests go unauthenticated (bench servers). */
  readonly credential?: Credential;
}

/** Loads one endpoint with autocannon and returns what the table shows. */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const { credential } = options;
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.durationSeconds,
    ...(options.amount ? { amount: options.amount } : {}),
    requests: [
      {
        method: 'POST',
        path: options.path,
        body: options.body,
        setupRequest: (request: autocannon.Request) => ({
          ...request,
          headers: credential ? signedHeaders(options.url, credential, options.path, options.body) : { 'content-type': 'application/json' },
        }),
      },
    ],
  });
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
