/**
 * A KMS client that sends every request through the official Huawei Cloud Node.js SDK core
 * (@huaweicloud/huaweicloud-sdk-core): ClientBuilder -> HcClient -> BasicCredentials -> AKSKSigner -> axios.
 * Nothing here signs, hashes or formats a request: the SDK does, exactly as the generated service
 * clients (e.g. @huaweicloud/huaweicloud-sdk-kms's KmsClient) do, so a server that accepts these
 * requests accepts the real SDK's SDK-HMAC-SHA256 signatures.
 *
 * What the SDK does with a request built here (read in the installed core, 3.1.211, and observed):
 * - `{project_id}` in the URL is replaced by BasicCredentials' project id, which is also sent and
 *   signed as `X-Project-Id`. Because the project id is given, the core never asks IAM for it
 *   (HcClient only calls IAM when a region is configured and no project id is known; no region is set here).
 * - The body object is serialised by axios with JSON.stringify (compact, no trailing newline) and the
 *   signer hashes JSON.stringify of the same object, so the two agree. A string body would not: the
 *   signer would hash the JSON-quoted string while axios sends the raw string, so strings are refused.
 * - `Content-Type` becomes `application/json` (HcClient normalises any `application/json...`);
 *   signed headers are every header the SDK had before signing (content-type, host, x-project-id,
 *   x-sdk-date, plus any extra header given here); `User-Agent` and `Accept` are added after signing, unsigned.
 * - The core retries only when it has two or more endpoints (and only on connection errors or 504);
 *   one endpoint is given here, so it never retries.
 * - The signer does not trim header values but Node's HTTP stack does: a signed header whose value has
 *   leading/trailing spaces arrives with a signature no server can verify. Pass extra headers without them.
 * - On every 4xx/5xx the core logs the whole axios error (config, headers, body) to stdout through log4js;
 *   that is switched off here unless KMS_TEST_SDK_LOGS is set.
 */
import type { Agent } from 'node:https';
import { BasicCredentials } from '@huaweicloud/huaweicloud-sdk-core/auth/BasicCredentials';
import { ClientBuilder } from '@huaweicloud/huaweicloud-sdk-core/ClientBuilder';
import { ServiceResponseException } from '@huaweicloud/huaweicloud-sdk-core/exception/ServiceResponseException';
import type { HcClient, HttpRequestOptions } from '@huaweicloud/huaweicloud-sdk-core/HcClient';
import { Logger4jInstance } from '@huaweicloud/huaweicloud-sdk-core/logger/log4jLogger';

// The core's one log4js logger (process-wide, used only by the SDK): its error dumps would flood test output.
if (!process.env.KMS_TEST_SDK_LOGS) Logger4jInstance.level = 'off';

export interface SdkClientOptions {
  /** Base URL of the service, e.g. http://127.0.0.1:PORT (a trailing slash is removed). */
  readonly endpoint: string;
  readonly projectId: string;
  readonly ak: string;
  readonly sk: string;
  /** Temporary-credential token: the SDK then sends and signs X-Security-Token. */
  readonly securityToken?: string;
  /** Milliseconds before axios gives up on a request (default 15000). */
  readonly timeoutMs?: number;
  /**
   * For an https endpoint: the agent axios connects with (its `ca`, and a client `cert` and `key`
   * for mTLS), given to the SDK through its own `axiosRequestConfig` option.
   */
  readonly httpsAgent?: Agent;
}

export interface SdkRequest {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path with `{project_id}` (and any other `{name}` from pathParams) left for the SDK to fill. */
  readonly url: string;
  /** JSON body (an object or array); omitted for requests without a body, as the generated GET operations do. */
  readonly body?: unknown;
  readonly queryParams?: Record<string, string | number | boolean | Array<string | number>>;
  readonly pathParams?: Record<string, string>;
  /** Sent and signed, in addition to the SDK's own headers. An `X-Sdk-Date` given here is reused by the signer. */
  readonly headers?: Record<string, string>;
}

export interface SdkResult {
  readonly status: number;
  /**
   * The parsed JSON body of a successful response (without the `httpStatusCode` the SDK adds to it).
   * Undefined for an error response: the SDK's exceptions keep only status, code, message and request id.
   */
  // Response bodies are JSON of known shape per endpoint; tests read the fields they assert on.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
  /** From the SDK's ClientRequestException / ServerResponseException (top-level `error_code` or `error.code`). */
  readonly errorCode?: string;
  readonly errorMsg?: string;
  /** The response's X-Request-Id header (read by the SDK itself). */
  readonly requestId?: string;
}

export interface SdkClient {
  /** POST /v1.0/{project_id}/kms/<operation> with a JSON body (default `{}`), like every KmsClient body operation. */
  call(operation: string, body?: unknown, extraHeaders?: Record<string, string>): Promise<SdkResult>;
  /** Any request, e.g. GET /v1.0/{project_id}/kms/user-instances (no body, like KmsClient.showUserInstances). */
  request(request: SdkRequest): Promise<SdkResult>;
  readonly projectId: string;
}

/** The response header the SDK copies into the parsed body when asked to (HcClient's `responseHeaders`). */
const REQUEST_ID_HEADER = 'X-Request-Id';

export function sdkClient(options: SdkClientOptions): SdkClient {
  const credentials = new BasicCredentials()
    .withAk(options.ak)
    .withSk(options.sk)
    .withProjectId(options.projectId)
    .withSecurityToken(options.securityToken);
  // The generated clients' `newClient` is just `(hcClient) => new KmsClient(hcClient)`; the HcClient itself is what we need.
  const hcClient = new ClientBuilder<HcClient>((client) => client)
    .withEndpoint(options.endpoint.replace(/\/+$/, ''))
    .withCredential(credentials)
    .withOptions({
      // A custom user agent also keeps the core from generating an app id under ~/.huaweicloud/.
      customUserAgent: 'hsm-kms-tests',
      axiosRequestConfig: { timeout: options.timeoutMs ?? 15_000, ...(options.httpsAgent ? { httpsAgent: options.httpsAgent } : {}) },
    })
    .build();

  const request = async (req: SdkRequest): Promise<SdkResult> => {
    if (typeof req.body === 'string') {
      throw new TypeError('sdkClient: the SDK signs JSON.stringify(body) but sends a string as is; pass an object');
    }
    // The shape KmsClient's ParamCreater builds (see e.g. createDatakey), plus `responseHeaders`,
    // which the generated clients also set (to ['']) and HcClient's type does not declare.
    const sdkOptions: HttpRequestOptions & { responseHeaders: string[] } = {
      method: req.method,
      url: req.url,
      contentType: req.body === undefined ? 'application/json' : 'application/json;charset=UTF-8',
      queryParams: req.queryParams ?? {},
      pathParams: req.pathParams ?? {},
      headers: { ...(req.body === undefined ? {} : { 'Content-Type': 'application/json;charset=UTF-8' }), ...req.headers },
      responseHeaders: [REQUEST_ID_HEADER],
    };
    if (req.body !== undefined) sdkOptions.data = req.body as Record<string, unknown>;
    try {
      const response = await hcClient.sendRequest<{ httpStatusCode?: number } & Record<string, unknown>>(sdkOptions);
      const { httpStatusCode, [REQUEST_ID_HEADER]: requestId, ...body } = response;
      return {
        status: httpStatusCode ?? 0,
        body: Array.isArray(response) ? response : body,
        ...(typeof requestId === 'string' ? { requestId } : {}),
      };
    } catch (error) {
      // 4xx -> ClientRequestException, 5xx -> ServerResponseException (both extend ServiceResponseException).
      // No status means the request never got an answer (refused, timed out): that stays an error.
      if (error instanceof ServiceResponseException && typeof error.httpStatusCode === 'number') {
        return {
          status: error.httpStatusCode,
          body: undefined,
          ...(error.errorCode !== undefined ? { errorCode: error.errorCode } : {}),
          ...(error.errorMsg !== undefined ? { errorMsg: error.errorMsg } : {}),
          ...(error.requestId !== undefined ? { requestId: error.requestId } : {}),
        };
      }
      throw error;
    }
  };

  return {
    projectId: options.projectId,
    request,
    call: (operation, body = {}, extraHeaders) =>
      request({ method: 'POST', url: `/v1.0/{project_id}/kms/${operation}`, body, ...(extraHeaders ? { headers: extraHeaders } : {}) }),
  };
}
