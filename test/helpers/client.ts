/** A minimal KMS client over fetch: what a test sends is exactly what goes on the wire. */
export interface KmsResponse {
  readonly status: number;
  readonly headers: Headers;
  // Response bodies are JSON of known shape per endpoint; tests read the fields they assert on.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly body: any;
}

export interface KmsClient {
  call(operation: string, body?: unknown): Promise<KmsResponse>;
  raw(operation: string, init: RequestInit): Promise<KmsResponse>;
  readonly project: string;
}

/** Sends a request to any URL; the body is parsed when it is JSON and left as text when not. */
export async function fetchResponse(url: string, init: RequestInit = {}): Promise<KmsResponse> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: the test sees the text.
  }
  return { status: response.status, headers: response.headers, body };
}

/**
 * A client of one project. `authHeaders` go with every request (an X-Auth-Token, usually; or a
 * function giving them, asked at each request, for a credential made on first use); headers a test
 * passes win over them, so a test can also send none or a wrong one.
 */
export function kmsClient(
  baseUrl: string | (() => string),
  project = 'project-a',
  authHeaders: Record<string, string> | (() => Promise<Record<string, string>>) = {},
): KmsClient {
  const base = (): string => (typeof baseUrl === 'function' ? baseUrl() : baseUrl);
  const raw = async (operation: string, init: RequestInit): Promise<KmsResponse> =>
    fetchResponse(`${base()}/v1.0/${project}/kms/${operation}`, {
      ...init,
      headers: { ...(typeof authHeaders === 'function' ? await authHeaders() : authHeaders), ...(init.headers as Record<string, string> | undefined) },
    });
  return {
    project,
    raw,
    call: (operation, body = {}) =>
      raw(operation, {
        method: 'POST',
        headers: { 'content-type': 'application/json;charset=UTF-8' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      }),
  };
}

/** Asserts the KMS error body and status, and returns the body for further checks. */
export function expectKmsError(response: KmsResponse, status: number, code: string): void {
  expect({ status: response.status, code: response.body?.error?.error_code }).toEqual({ status, code });
  expect(response.body.error_code).toBe(code);
  expect(typeof response.body.error_msg).toBe('string');
  expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
}

/** Makes a CMK through the API (create-key must answer 200) and returns its key_id. */
export async function createKeyId(client: KmsClient, keyAlias: string, fields: Record<string, string> = {}): Promise<string> {
  const created = await client.call('create-key', { key_alias: keyAlias, ...fields });
  expect(created.status).toBe(200);
  return created.body.key_info.key_id as string;
}
