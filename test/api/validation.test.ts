/**
 * Request validation: every malformed request gets the KMS code the API names for it (400 unless
 * noted), in the documented error body, without echoing what was sent, and never a 5xx.
 */
import { createKeyId, expectKmsError, fetchResponse, kmsClient, type KmsClient, type KmsResponse } from '../helpers/client';
import { useTestService } from '../helpers/service';
import { KMS_ERRORS, type KmsCode } from '../../src/errors';

/** Well-formed, but no key has it. */
const UNKNOWN_KEY_ID = '00000000-0000-4000-8000-000000000000';
const VALID_SEQUENCE = '919c82d4-8046-4722-9094-35c3c6524cff';
/** Sent in bad requests; must never come back in a response. */
const SECRET = 'SECRET-VALUE';

let keyId: string;

const t = useTestService();
const a = t.client('project-a');

beforeAll(async () => {
  keyId = await createKeyId(a, 'validation');
});

/** A request to any path of the service (the client only builds /v1.0/{project}/kms/<op>). */
async function request(path: string, init: RequestInit = {}): Promise<KmsResponse> {
  const headers = { 'x-auth-token': await t.token('project-a'), ...(init.headers as Record<string, string> | undefined) };
  return fetchResponse(`${t.service.url}${path}`, { ...init, headers });
}

/** A client of a project whose id the service must refuse, authenticated as project-a. */
function clientOfBadProject(project: string): KmsClient {
  return kmsClient(() => t.service.url, project, async () => ({ 'x-auth-token': await t.token('project-a') }));
}

function postJson(path: string, body: string): Promise<KmsResponse> {
  return request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

/** The body other required fields of each operation need, so that only the field under test fails. */
const OTHER_REQUIRED: Readonly<Record<string, Record<string, string>>> = {
  'describe-key': {},
  'enable-key': {},
  'disable-key': {},
  'schedule-key-deletion': { pending_days: '7' },
  'cancel-key-deletion': {},
  'update-key-alias': { key_alias: 'renamed' },
  'update-key-description': { key_description: 'text' },
  'create-datakey': {},
  'create-datakey-without-plaintext': {},
  'encrypt-datakey': { plain_text: '00'.repeat(64), datakey_plain_length: '32' },
  'decrypt-datakey': { cipher_text: '00'.repeat(100), datakey_cipher_length: '32' },
};
const KEY_ID_OPERATIONS = Object.keys(OTHER_REQUIRED);

describe('missing parameters: KMS.0204', () => {
  it.each(KEY_ID_OPERATIONS)('%s without key_id', async (operation) => {
    expectKmsError(await a.call(operation, { ...OTHER_REQUIRED[operation] }), 400, 'KMS.0204');
  });

  it.each([
    ['create-key', 'key_alias', {}],
    ['schedule-key-deletion', 'pending_days', { key_id: UNKNOWN_KEY_ID }],
    ['update-key-alias', 'key_alias', { key_id: UNKNOWN_KEY_ID }],
    ['update-key-description', 'key_description', { key_id: UNKNOWN_KEY_ID }],
    ['encrypt-datakey', 'plain_text', { key_id: UNKNOWN_KEY_ID, datakey_plain_length: '32' }],
    ['decrypt-datakey', 'datakey_cipher_length', { key_id: UNKNOWN_KEY_ID, cipher_text: '00'.repeat(100) }],
  ])('%s without %s', async (operation, _field, body) => {
    expectKmsError(await a.call(operation, body), 400, 'KMS.0204');
  });

  it('an empty JSON body where key_id is required', async () => {
    expectKmsError(await postJson('/v1.0/project-a/kms/describe-key', ''), 400, 'KMS.0204');
  });
});

describe('malformed key_id: KMS.0205', () => {
  const malformed: Array<[string, unknown]> = [
    ['upper case', UNKNOWN_KEY_ID.replace(/0/g, 'A')],
    ['35 characters', UNKNOWN_KEY_ID.slice(1)],
    ['37 characters', `${UNKNOWN_KEY_ID}0`],
    ['no hyphens', UNKNOWN_KEY_ID.replace(/-/g, '')],
    ['an empty string', ''],
    ['a number', 12345],
    ['null', null],
    ['an object', { id: UNKNOWN_KEY_ID }],
  ];

  it.each(malformed)('describe-key with a key_id of %s', async (_label, value) => {
    expectKmsError(await a.call('describe-key', { key_id: value }), 400, 'KMS.0205');
  });

  it('the upper-case form of an existing key id', async () => {
    expectKmsError(await a.call('describe-key', { key_id: keyId.toUpperCase() }), 400, 'KMS.0205');
  });

  it.each(KEY_ID_OPERATIONS)('%s with a malformed key_id', async (operation) => {
    expectKmsError(await a.call(operation, { key_id: 'not-a-key-id', ...OTHER_REQUIRED[operation] }), 400, 'KMS.0205');
  });
});

describe('sequence: KMS.0206 unless 36 characters', () => {
  it.each([
    ['35 characters', VALID_SEQUENCE.slice(1)],
    ['37 characters', `${VALID_SEQUENCE}0`],
    ['a short string', 'abc'],
    ['36 characters outside [0-9A-Za-z-]', '!'.repeat(36)],
    ['a number', 1],
  ])('refuses a sequence of %s', async (_label, sequence) => {
    expectKmsError(await a.call('describe-key', { key_id: keyId, sequence }), 400, 'KMS.0206');
  });

  it('refuses a bad sequence on list-keys and create-key too', async () => {
    expectKmsError(await a.call('list-keys', { sequence: 'abc' }), 400, 'KMS.0206');
    expectKmsError(await a.call('create-key', { key_alias: 'with-sequence', sequence: 'abc' }), 400, 'KMS.0206');
  });

  it('accepts a 36-character uuid sequence', async () => {
    const described = await a.call('describe-key', { key_id: keyId, sequence: VALID_SEQUENCE });
    expect(described.status).toBe(200);
    expect(described.body.key_info.key_id).toBe(keyId);

    expect((await a.call('describe-key', { key_id: keyId, sequence: VALID_SEQUENCE.toUpperCase() })).status).toBe(200);
    expect((await a.call('list-keys', { sequence: VALID_SEQUENCE })).status).toBe(200);
  });
});

describe('body format', () => {
  it.each([
    ['truncated JSON', '{"key_id":'],
    ['unquoted names', `{key_id: "${UNKNOWN_KEY_ID}"}`],
    ['a trailing comma', `{"key_id": "${UNKNOWN_KEY_ID}",}`],
    ['plain text', 'key_id=abc'],
  ])('refuses %s with KMS.0202', async (_label, body) => {
    expectKmsError(await a.call('describe-key', body), 400, 'KMS.0202');
  });

  it.each([
    ['an empty array', '[]'],
    ['an array holding the fields', `[{"key_id": "${UNKNOWN_KEY_ID}"}]`],
    ['a JSON string', '"hello"'],
    ['a JSON number', '42'],
    ['JSON null', 'null'],
    ['JSON true', 'true'],
  ])('refuses %s as the body with KMS.0202', async (_label, body) => {
    expectKmsError(await a.call('describe-key', body), 400, 'KMS.0202');
  });

  it('refuses an array body on list-keys, whose body is optional, with KMS.0202', async () => {
    expectKmsError(await a.call('list-keys', '[]'), 400, 'KMS.0202');
  });

  describe('size limit', () => {
    /** A list-keys body of exactly `bytes` bytes (unknown fields are accepted and ignored). */
    function bodyOfSize(bytes: number): string {
      const body = `{"pad":"${'x'.repeat(bytes - '{"pad":""}'.length)}"}`;
      expect(Buffer.byteLength(body)).toBe(bytes);
      return body;
    }

    it('uses the default limit of 65536 bytes', () => {
      expect(t.config.bodyLimitBytes).toBe(65536);
    });

    it('accepts a body of exactly the limit', async () => {
      const response = await a.call('list-keys', bodyOfSize(t.config.bodyLimitBytes));
      expect(response.status).toBe(200);
      expect(response.body.keys).toContain(keyId);
    });

    it('refuses a body one byte over the limit with KMS.0203', async () => {
      expectKmsError(await a.call('list-keys', bodyOfSize(t.config.bodyLimitBytes + 1)), 400, 'KMS.0203');
    });

    it('refuses a much larger body with KMS.0203', async () => {
      expectKmsError(await a.call('describe-key', { key_id: keyId, pad: 'x'.repeat(1024 * 1024) }), 400, 'KMS.0203');
    });
  });

  describe('content type', () => {
    it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])('refuses %s with KMS.0214', async (type) => {
      const response = await a.raw('describe-key', {
        method: 'POST',
        headers: { 'content-type': type },
        body: JSON.stringify({ key_id: keyId }),
      });
      expectKmsError(response, 400, 'KMS.0214');
    });

    it('refuses a body without a content type with KMS.0214', async () => {
      const response = await a.raw('describe-key', { method: 'POST', body: new Uint8Array(Buffer.from(JSON.stringify({ key_id: keyId }))) });
      expectKmsError(response, 400, 'KMS.0214');
    });

    it('refuses a charset other than UTF-8 with KMS.0214', async () => {
      const response = await a.raw('describe-key', {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=latin1' },
        body: JSON.stringify({ key_id: keyId }),
      });
      expectKmsError(response, 400, 'KMS.0214');
    });

    it('accepts application/json with and without charset=UTF-8', async () => {
      for (const type of ['application/json', 'application/json;charset=UTF-8', 'application/json; charset=utf-8']) {
        const response = await a.raw('describe-key', { method: 'POST', headers: { 'content-type': type }, body: JSON.stringify({ key_id: keyId }) });
        expect({ type, status: response.status }).toEqual({ type, status: 200 });
      }
    });
  });
});

describe('methods and URLs', () => {
  it.each(['GET', 'PUT', 'DELETE', 'PATCH'])('%s on an operation is 405 KMS.0215', async (method) => {
    const init: RequestInit = method === 'GET' ? { method } : { method, headers: { 'content-type': 'application/json' }, body: '{}' };
    expectKmsError(await a.raw('list-keys', init), 405, 'KMS.0215');
  });

  it('POST on a version document (a GET) is 405 KMS.0215', async () => {
    expectKmsError(await postJson('/', '{}'), 405, 'KMS.0215');
  });

  it.each([
    ['an unknown operation', '/v1.0/project-a/kms/frobnicate-key'],
    ['an operation of the API this service does not implement', '/v1.0/project-a/kms/create-pin'],
    ['another API version', '/v2.0/project-a/kms/list-keys'],
    ['a path outside the API', '/v1.0/project-a/list-keys'],
    ['a version the API does not have', '/v2.0'],
    ['an operation in upper case', '/v1.0/project-a/kms/LIST-KEYS'],
    ['an operation with a trailing slash', '/v1.0/project-a/kms/list-keys/'],
  ])('%s is KMS.0201', async (_label, path) => {
    expectKmsError(await postJson(path, '{}'), 400, 'KMS.0201');
  });

  it.each([
    ['a space', 'p%20x'],
    ['a dot', 'p.x'],
    ['65 characters', 'p'.repeat(65)],
  ])('a project_id with %s is KMS.0201', async (_label, project) => {
    expectKmsError(await clientOfBadProject(project).call('list-keys', {}), 400, 'KMS.0201');
  });

  it('a percent-encoded project_id is KMS.0201, not another project', async () => {
    expectKmsError(await postJson('/v1.0/project%2Da/kms/list-keys', '{}'), 400, 'KMS.0201');
  });

  it('a query parameter is KMS.0308, without naming it', async () => {
    const response = await postJson(`/v1.0/project-a/kms/list-keys?${SECRET}=1`, '{}');
    expectKmsError(response, 400, 'KMS.0308');
    expect(JSON.stringify(response.body)).not.toContain(SECRET);
  });

  it('a project_id of letters, digits, "_" and "-" up to 64 characters is accepted', async () => {
    const project = `Ab0_-${'p'.repeat(59)}`;
    expect(project).toHaveLength(64);
    const response = await t.client(project).call('list-keys', {});
    expect(response.status).toBe(200);
    expect(response.body.total).toBe(0);
  });
});

describe('the error body', () => {
  it('has the nested {error:{error_code, error_msg}}, the same values at the top level, and the request id', async () => {
    const response = await a.call('describe-key', { key_id: 'bad' });
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(response.body).sort()).toEqual(['error', 'error_code', 'error_msg', 'request_id']);
    expect(response.body.request_id).toBe(response.headers.get('x-request-id'));
    expect(Object.keys(response.body.error).sort()).toEqual(['error_code', 'error_msg']);
    expect(response.body.error).toEqual({ error_code: response.body.error_code, error_msg: response.body.error_msg });
    expect(response.body.error_code).toBe('KMS.0205');
  });

  it.each<[string, () => Promise<KmsResponse>, KmsCode]>([
    ['KMS.0202', () => a.call('describe-key', '{'), 'KMS.0202'],
    ['KMS.0204', () => a.call('describe-key', {}), 'KMS.0204'],
    ['KMS.0205', () => a.call('describe-key', { key_id: 'bad' }), 'KMS.0205'],
    ['KMS.0207', () => a.call('describe-key', { key_id: UNKNOWN_KEY_ID }), 'KMS.0207'],
    ['KMS.0215', () => a.raw('describe-key', { method: 'GET' }), 'KMS.0215'],
  ])('%s starts its error_msg with the catalogue message', async (_label, send, code) => {
    const response = await send();
    expectKmsError(response, KMS_ERRORS[code].status, code);
    expect(response.body.error_msg.startsWith(KMS_ERRORS[code].message)).toBe(true);
  });
});

describe('error messages never echo the request', () => {
  const secretRequests: Array<[string, () => Promise<KmsResponse>, number, KmsCode]> = [
    ['a bad key_id', () => a.call('describe-key', { key_id: `zz-${SECRET}` }), 400, 'KMS.0205'],
    ['a bad key_id on create-datakey', () => a.call('create-datakey', { key_id: `zz-${SECRET}` }), 400, 'KMS.0205'],
    ['a bad sequence', () => a.call('describe-key', { key_id: keyId, sequence: `${SECRET}-${SECRET}-${SECRET}` }), 400, 'KMS.0206'],
    ['a bad alias', () => a.call('create-key', { key_alias: `${SECRET} !` }), 400, 'KMS.1101'],
    ['a reserved alias', () => a.call('create-key', { key_alias: `${SECRET}/default` }), 400, 'KMS.1101'],
    ['a bad pending_days', () => a.call('schedule-key-deletion', { key_id: keyId, pending_days: SECRET }), 400, 'KMS.1401'],
    ['a bad limit', () => a.call('list-keys', { limit: SECRET }), 400, 'KMS.1601'],
    ['a bad marker', () => a.call('list-keys', { marker: SECRET }), 400, 'KMS.1602'],
    ['an unsupported key_spec', () => a.call('create-key', { key_alias: 'secret-spec', key_spec: SECRET }), 400, 'KMS.0308'],
    ['invalid JSON', () => a.call('describe-key', `{"key_id": ${SECRET}}`), 400, 'KMS.0202'],
    ['a bad project_id', () => clientOfBadProject(`${SECRET}%20`).call('list-keys', {}), 400, 'KMS.0201'],
    ['an unknown operation', () => a.call(`${SECRET.toLowerCase()}-op`, {}), 400, 'KMS.0201'],
    ['an encryption_context key with a bad value', () => a.call('create-datakey', { key_id: keyId, encryption_context: { [SECRET]: 1 } }), 400, 'KMS.0208'],
  ];

  it.each(secretRequests)('%s', async (_label, send, status, code) => {
    const response = await send();
    expectKmsError(response, status, code);
    const text = JSON.stringify(response.body);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(SECRET.toLowerCase());
  });

  it('nor does the log, for values sent in the body', async () => {
    const before = t.logs.lines.length;
    await a.call('describe-key', { key_id: `zz-${SECRET}` });
    await a.call('describe-key', `{"key_id": ${SECRET}}`);
    await a.call('create-key', { key_alias: `${SECRET} !` });
    const logged = t.logs.lines.slice(before).join('');
    expect(logged).toContain('request refused');
    expect(logged).not.toContain(SECRET);
  });
});

describe('no validation failure is a 5xx', () => {
  const json = (body: string): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body });
  /** [what is odd, operation, request, status, KMS code (undefined for a success or a HEAD)] */
  const odd: Array<[string, string, RequestInit, number, KmsCode | undefined]> = [
    ['deeply nested JSON', 'describe-key', json(`${'{"a":'.repeat(500)}1${'}'.repeat(500)}`), 400, 'KMS.0204'],
    ['a deeply nested array', 'list-keys', json(`${'['.repeat(1000)}${']'.repeat(1000)}`), 400, 'KMS.0202'],
    ['whitespace only', 'describe-key', json('   '), 400, 'KMS.0202'],
    ['a lone surrogate in the alias', 'create-key', json('{"key_alias":"\\ud800"}'), 400, 'KMS.1101'],
    ['a NUL in the alias', 'create-key', json('{"key_alias":"a\\u0000b"}'), 400, 'KMS.1101'],
    ['a number too large for a double', 'list-keys', json('{"limit": 1e400}'), 400, 'KMS.1601'],
    ['ten-digit limit and marker', 'list-keys', json(`{"limit": "${'9'.repeat(10)}", "marker": "${'9'.repeat(10)}"}`), 400, 'KMS.1601'],
    ['key_id as an array', 'describe-key', json(`{"key_id": ["${UNKNOWN_KEY_ID}"]}`), 400, 'KMS.0205'],
    ['encryption_context as a string', 'create-datakey', json(`{"key_id":"${UNKNOWN_KEY_ID}","encryption_context":"x"}`), 400, 'KMS.0208'],
    ['encryption_context with a number', 'create-datakey', json(`{"key_id":"${UNKNOWN_KEY_ID}","encryption_context":{"a":1}}`), 400, 'KMS.0208'],
    ['__proto__ holding the fields', 'describe-key', json(`{"__proto__": {"key_id": "${UNKNOWN_KEY_ID}"}}`), 400, 'KMS.0204'],
    ['a charset other than UTF-8 that decodes', 'describe-key', { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-16' }, body: '{}' }, 400, 'KMS.0214'],
    ['an unknown content encoding', 'describe-key', { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'x-unknown' }, body: '{}' }, 400, 'KMS.0214'],
    ['a corrupt gzip body', 'describe-key', { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' }, body: 'garbage' }, 400, 'KMS.0202'],
    ['a corrupt brotli body', 'describe-key', { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': 'br' }, body: 'garbage' }, 400, 'KMS.0202'],
    ['a multipart body', 'describe-key', { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=x' }, body: '--x--' }, 400, 'KMS.0214'],
    ['OPTIONS', 'list-keys', { method: 'OPTIONS' }, 405, 'KMS.0215'],
    ['HEAD', 'list-keys', { method: 'HEAD' }, 405, undefined],
    // Odd but valid: answered normally.
    ['a byte-order mark', 'describe-key', json(`\uFEFF{"key_id":"${UNKNOWN_KEY_ID}"}`), 404, 'KMS.0207'],
    ['a field given twice (the last wins)', 'describe-key', json(`{"key_id": "bad", "key_id": "${UNKNOWN_KEY_ID}"}`), 404, 'KMS.0207'],
    ['constructor as an unknown field', 'list-keys', json('{"constructor": {"prototype": {"x": 1}}}'), 200, undefined],
  ];

  it.each(odd)('%s', async (_label, operation, init, status, code) => {
    const response = await a.raw(operation, init);
    if (code) {
      expectKmsError(response, status, code);
    } else {
      expect(response.status).toBe(status);
      expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('the service still answers afterwards, and logged no server error', async () => {
    const response = await a.call('describe-key', { key_id: keyId });
    expect(response.status).toBe(200);
    expect(t.logs.text).not.toContain('"level":50');
  });
});
