/**
 * One call to one KMS endpoint: `POST {endpoint}/v1.0/{project_id}/kms/{operation}` with a JSON
 * body, authenticated either by an X-Auth-Token or by the official Huawei Cloud SDK core's AK/SK
 * signer (SDK-HMAC-SHA256), exactly as the core's HcClient signs a request: the headers
 * `content-type: application/json` and `X-Project-Id`, a body hashed as JSON.stringify of the same
 * object that is sent. Sending uses Node's fetch so that every call has its own timeout and can be
 * abandoned when a hedged call elsewhere has already answered.
 */
import { inspect } from 'node:util';
import { AKSKSigner } from '@huaweicloud/huaweicloud-sdk-core/auth/AKSKSigner';
import { BasicCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/BasicCredentials';
import { ConfigurationError, KmsConnectionError, KmsRequestError, KmsTimeoutError } from './errors';

/** How the client proves who it is: an AK/SK pair (signed by the SDK core) or a token. */
export type KmsAuth =
  | { readonly accessKey: string; readonly secretKey: string; readonly securityToken?: string }
  | { readonly token: string };

export interface KmsAnswer {
  readonly body: Record<string, unknown>;
  readonly requestId: string | undefined;
}

export interface KmsCallOptions {
  readonly timeoutMs: number;
  /** Aborts the call (e.g. another endpoint answered a hedged call first). */
  readonly signal?: AbortSignal;
}

/** Counts every HTTP call made, per operation: the metrics' `kmsCalls`. */
export class KmsCallCounter {
  private readonly perOperation = new Map<string, number>();
  total = 0;
  record(operation: string): void {
    this.total += 1;
    this.perOperation.set(operation, (this.perOperation.get(operation) ?? 0) + 1);
  }
  byOperation(): Record<string, number> {
    return Object.fromEntries(this.perOperation);
  }
}

export class KmsHttp {
  // The secrets are in #private fields: not enumerable, not shown by util.inspect, not in JSON.
  /** Exactly one of the two is set: the SDK core's credentials for AK/SK, or the token. */
  readonly #credentials: BasicCredentials | undefined;
  readonly #token: string | undefined;
  readonly #securityToken: string | undefined;
  readonly calls = new KmsCallCounter();

  constructor(
    readonly projectId: string,
    auth: KmsAuth,
  ) {
    if (!/^[0-9A-Za-z_-]{1,64}$/.test(projectId)) throw new ConfigurationError('projectId must be 1-64 letters, digits, _ or -');
    if ('accessKey' in auth) {
      if (!auth.accessKey || !auth.secretKey) throw new ConfigurationError('an AK/SK pair needs both accessKey and secretKey');
      this.#credentials = new BasicCredentials().withAk(auth.accessKey).withSk(auth.secretKey).withProjectId(projectId);
      if (auth.securityToken) {
        this.#credentials.withSecurityToken(auth.securityToken);
        this.#securityToken = auth.securityToken;
      }
    } else {
      if (!auth.token) throw new ConfigurationError('a token must not be empty');
      this.#token = auth.token;
    }
  }

  /** What may be shown of it: the project and the kind of credential, never the credential. */
  toJSON(): Record<string, unknown> {
    return { projectId: this.projectId, auth: this.#token === undefined ? 'AK/SK' : 'token', calls: this.calls.total };
  }

  [inspect.custom](): string {
    return `KmsHttp ${inspect(this.toJSON())}`;
  }

  async call(endpoint: string, operation: string, body: Record<string, unknown>, options: KmsCallOptions): Promise<KmsAnswer> {
    const url = `${endpoint}/v1.0/${this.projectId}/kms/${operation}`;
    const headers = this.headers(url, body);
    const timeout = AbortSignal.timeout(options.timeoutMs);
    const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
    this.calls.record(operation);
    let response: Response;
    let text: string;
    try {
      // Never follow a redirect: fetch would re-send the body and the credentials to another host,
      // whose plain_text would then be taken as the data key. A 3xx is a final error (below).
      response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal, redirect: 'manual' });
      text = await response.text();
    } catch (error) {
      if (timeout.aborted) throw new KmsTimeoutError(operation, endpoint, options.timeoutMs);
      if (options.signal?.aborted) throw new KmsConnectionError(operation, endpoint, 'abandoned: another endpoint answered first');
      // fetch's own message ("fetch failed") hides the reason in its cause (ECONNREFUSED, …): name only the code.
      const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
      const code = cause && 'code' in cause && typeof cause.code === 'string' ? cause.code : (cause?.message ?? String(error));
      throw new KmsConnectionError(operation, endpoint, `not reachable (${code})`);
    }
    const requestId = response.headers.get('x-request-id') ?? undefined;
    const parsed = parseJsonObject(text);
    if (response.status >= 300 && response.status < 400) {
      // Not retryable (status < 500): nothing is sent to the redirect's target, nor failed over.
      throw new KmsRequestError(operation, endpoint, response.status, `HTTP.${response.status}`, 'a redirect, which is not followed', requestId);
    }
    if (!response.ok) {
      const nested = parsed && isRecord(parsed.error) ? parsed.error : undefined;
      const code = stringField(nested, 'error_code') ?? stringField(parsed, 'error_code') ?? `HTTP.${response.status}`;
      const message = stringField(nested, 'error_msg') ?? stringField(parsed, 'error_msg') ?? response.statusText;
      throw new KmsRequestError(operation, endpoint, response.status, code, message, requestId ?? stringField(parsed, 'request_id'));
    }
    if (!parsed) throw new KmsConnectionError(operation, endpoint, `answered ${response.status} without a JSON object`);
    return { body: parsed, requestId };
  }

  private headers(url: string, body: Record<string, unknown>): Record<string, string> {
    if (this.#token !== undefined) return { 'content-type': 'application/json', 'x-auth-token': this.#token };
    if (!this.#credentials) throw new ConfigurationError('no credentials');
    const request = {
      endpoint: url,
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'X-Project-Id': this.projectId,
        ...(this.#securityToken ? { 'X-Security-Token': this.#securityToken } : {}),
      },
      data: body,
      queryParams: {},
    };
    const signed = AKSKSigner.sign(request, this.#credentials) as Record<string, string>;
    // fetch sets Host itself, from the same URL the signer read it from.
    const { host: _host, ...send } = signed;
    return send;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function stringField(object: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = object?.[name];
  return typeof value === 'string' ? value : undefined;
}
