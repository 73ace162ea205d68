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

/**
 * The signed headers of one request, kept for the second they are valid in: the SDK signs the
 * date to the second, so every request it sends within one second with the same body carries
 * exactly these headers. Signing once per second rather than per request keeps the load
 * generator's own cost (it shares the machine's two cores with the server) out of the figures;
 * the service still verifies every request in full.
 */
class SignedHeadersBySecond {
  private date = '';
  private headers: Record<string, string> = {};

  constructor(
    private readonly url: string,
    private readonly credential: Credential,
    private readonly path: string,
    private readonly body: string,
  ) {}

  current(): Record<string, string> {
    const date = sdkDate();
    if (date !== this.date) {
      this.headers = signedHeaders(this.url, this.credential, this.path, this.body);
      this.date = this.headers['x-sdk-date']!;
    }
    return this.headers;
  }
}

/** Loads one endpoint with autocannon and returns what the table shows. */
export async function load(options: LoadOptions): Promise<LoadResult> {
  const { credential } = options;
  const signer = credential ? new SignedHeadersBySecond(options.url, credential, options.path, options.body) : undefined;
  let finished: (error: Error | null, result: autocannon.Result) => void = () => undefined;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finished = (error, result) => (error ? reject(error) : resolve(result));
  });
  const instance = autocannon({
    url: `${options.url}${options.path}`,
    connections: options.connections,
    duration: options.durationSeconds,
    ...(options.amount ? { amount: options.amount } : {}),
    method: 'POST',
    body: options.body,
    headers: signer ? signer.current() : { 'content-type': 'application/json' },
  }, (error, result) => finished(error, result));
  if (signer) {
    // Each connection moves to the new second's headers after its next response.
    const sentWith = new WeakMap<object, Record<string, string>>();
    let refreshed = signer.current();
    const timer = setInterval(() => (refreshed = signer.current()), 100);
    instance.on('response', (client: { setHeaders(headers: Record<string, string>): void }) => {
      if (sentWith.get(client) === refreshed) return;
      sentWith.set(client, refreshed);
      client.setHeaders(refreshed);
    });
    instance.on('done', () => clearInterval(timer));
  }
  const result = await done;
  return {
    requestsPerSecond: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

/**
 * How long a server is loaded at the run's peak connections before anything of it is measured.
 * V8 compiles a fresh process's code as it runs it, and a cluster's second worker gets no request
 * until there are several connections: in one measure (issue 21, a fresh service of two workers at
 * 32 connections, second by second) the rate rose from about 1,800 req/s in the first two seconds
 * to its steady 4,000 from the sixth or seventh, with p99 falling from about 50 ms to under 20.
 * A server in production runs for days, so the figures are those of warm servers: every server
 * gets the same warm-up (one second in a smoke run).
 */
export const WARM_UP_SECONDS = 8;

/** Loads a server for `seconds`, one second at a time, and returns each second's rate (req/s), to be printed with the run. */
export async function warmUp(options: Omit<LoadOptions, 'durationSeconds' | 'amount'>, seconds: number): Promise<number[]> {
  const rates: number[] = [];
  for (let second = 0; second < seconds; second++) rates.push((await load({ ...options, durationSeconds: 1 })).requestsPerSecond);
  return rates;
}
