/**
 * The ways one KMS operation is spread over several instances of the service. The endpoints are
 * only the configured ones: nothing in a message chooses where its data key is sent.
 */
import { KmsUnavailableError, isRetryable, type KmsAttemptError } from './errors';
import type { KmsAnswer, KmsHttp } from './kms-http';

export interface EndpointPolicy {
  /** Base URLs of the instances, in order of preference (no trailing slash). */
  readonly endpoints: readonly string[];
  /** Per-call timeout (ms). */
  readonly timeoutMs: number;
  /** After this long without an answer, a decryption is also sent to the next endpoint (ms). */
  readonly hedgeDelayMs: number;
}

/**
 * For generation: the endpoints in order, moving on after a timeout, an unreachable endpoint or a
 * 5xx, and stopping at the first 4xx (the KMS's verdict, which no other instance would change).
 */
export async function withFailover(
  http: KmsHttp,
  policy: EndpointPolicy,
  operation: string,
  body: Record<string, unknown>,
): Promise<KmsAnswer & { endpoint: string }> {
  const attempts: KmsAttemptError[] = [];
  for (const endpoint of policy.endpoints) {
    try {
      return { ...(await http.call(endpoint, operation, body, { timeoutMs: policy.timeoutMs })), endpoint };
    } catch (error) {
      if (!isRetryable(error)) throw error;
      attempts.push(error as KmsAttemptError);
    }
  }
  throw new KmsUnavailableError(operation, attempts);
}

/**
 * For decryption: the first endpoint at once, the next one when the previous has failed or has not
 * answered within hedgeDelayMs, and so on; the first answer wins and the other calls are abandoned.
 * A 4xx from any endpoint ends the call (the data key was refused, e.g. for its encryption context).
 */
export function withHedging(
  http: KmsHttp,
  policy: EndpointPolicy,
  operation: string,
  body: Record<string, unknown>,
): Promise<KmsAnswer & { endpoint: string }> {
  return new Promise((resolve, reject) => {
    const abandon = new AbortController();
    const attempts: KmsAttemptError[] = [];
    let started = 0;
    let settled = false;
    let hedgeTimer: NodeJS.Timeout | undefined;
    const finish = (): void => {
      settled = true;
      clearTimeout(hedgeTimer);
      abandon.abort();
    };
    const startNext = (): void => {
      clearTimeout(hedgeTimer);
      if (settled || started >= policy.endpoints.length) return;
      const endpoint = policy.endpoints[started]!;
      started += 1;
      if (started < policy.endpoints.length) hedgeTimer = setTimeout(startNext, policy.hedgeDelayMs);
      http.call(endpoint, operation, body, { timeoutMs: policy.timeoutMs, signal: abandon.signal }).then(
        (answer) => {
          if (settled) return;
          finish();
          resolve({ ...answer, endpoint });
        },
        (error: unknown) => {
          if (settled) return;
          if (!isRetryable(error)) {
            finish();
            reject(error);
            return;
          }
          attempts.push(error as KmsAttemptError);
          if (attempts.length === policy.endpoints.length) {
            finish();
            reject(new KmsUnavailableError(operation, attempts));
          } else {
            // A failed endpoint is replaced by the next one at once, without waiting for the hedge.
            startNext();
          }
        },
      );
    };
    startNext();
  });
}
