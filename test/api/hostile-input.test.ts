/**
 * Values a hostile client chooses to trip the service's own lookups: the names of
 * Object.prototype's members wherever a field's string is looked up, and bodies whose bytes are
 * not UTF-8. Each gets its documented 4xx, never a 500, and never binds like another value.
 */
import { createKeyId, expectKmsError, fetchResponse, type KmsResponse } from '../helpers/client';
import { useTestService } from '../helpers/service';

/** Names an object literal inherits from Object.prototype (and `__proto__`, which JSON.parse makes an own key). */
const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__'];

let keyId: string;

const t = useTestService();
const kms = t.client('project-a');

beforeAll(async () => {
  keyId = await createKeyId(kms, 'hostile-input');
});

describe('names of Object.prototype members as values', () => {
  it.each(PROTOTYPE_NAMES)('create-datakey and create-datakey-without-plaintext refuse key_spec "%s" with KMS.1902', async (name) => {
    expectKmsError(await kms.call('create-datakey', { key_id: keyId, key_spec: name }), 400, 'KMS.1902');
    expectKmsError(await kms.call('create-datakey-without-plaintext', { key_id: keyId, key_spec: name }), 400, 'KMS.1902');
  });

  it.each(PROTOTYPE_NAMES)('create-key refuses key_spec, key_usage and origin "%s" with KMS.0308', async (name) => {
    for (const field of ['key_spec', 'key_usage', 'origin']) {
      const response = await kms.call('create-key', { key_alias: `proto-${field}`, [field]: name });
      expect({ field, status: response.status }).toEqual({ field, status: 400 });
      expectKmsError(response, 400, 'KMS.0308');
    }
  });

  it.each(PROTOTYPE_NAMES)('list-keys: key_spec "%s" matches no key, and as key_state it is KMS.0308', async (name) => {
    const listed = await kms.call('list-keys', { key_spec: name });
    expect(listed.status).toBe(200);
    expect(listed.body.keys).toEqual([]);
    expectKmsError(await kms.call('list-keys', { key_state: name }), 400, 'KMS.0308');
  });

  it.each(PROTOTYPE_NAMES)('an operation named "%s" is KMS.0201', async (name) => {
    const response = await fetchResponse(`${t.service.url}/v1.0/project-a/kms/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': await t.token('project-a') },
      body: '{}',
    });
    expectKmsError(response, 400, 'KMS.0201');
  });

  it.each(PROTOTYPE_NAMES)('"%s" as X-Auth-Token is 401, as X-Project-Id KMS.0321', async (name) => {
    const send = (headers: Record<string, string>): Promise<KmsResponse> =>
      fetchResponse(`${t.service.url}/v1.0/project-a/kms/list-keys`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    expectKmsError(await send({ 'x-auth-token': name }), 401, 'APIGW.0301');
    expectKmsError(await send({ 'x-auth-token': await t.token('project-a'), 'x-project-id': name }), 403, 'KMS.0321');
  });

  it.each(PROTOTYPE_NAMES)('a tag key and value "%s" is an ordinary tag: set, shown, listed, found and deleted; as an action, a match key or a key id it is refused', async (name) => {
    const tagged = await kms.call(`${keyId}/tags`, `{"tag":{"key":"${name}","value":"${name}"}}`);
    expect({ name, status: tagged.status }).toEqual({ name, status: 204 });
    expect((await kms.raw(`${keyId}/tags`, { method: 'GET' })).body.tags).toContainEqual({ key: name, value: name });
    expect((await kms.raw('tags', { method: 'GET' })).body.tags).toContainEqual({ key: name, values: [name] });
    const found = await kms.call('resource_instances/action', `{"action":"filter","tags":[{"key":"${name}","values":["${name}"]}]}`);
    expect(found.body.resources.map((resource: { resource_id: string }) => resource.resource_id)).toEqual([keyId]);
    expect((await kms.raw(`${keyId}/tags/${encodeURIComponent(name)}`, { method: 'DELETE' })).status).toBe(204);
    expect((await kms.call('resource_instances/action', `{"action":"count","tags":[{"key":"${name}","values":[]}]}`)).body).toEqual({ total_count: 0 });
    expectKmsError(await kms.call(`${keyId}/tags/action`, `{"action":"${name}","tags":[{"key":"a"}]}`), 400, 'KMS.0404');
    expectKmsError(await kms.call('resource_instances/action', `{"action":"${name}"}`), 400, 'KMS.0404');
    expectKmsError(await kms.call('resource_instances/action', `{"action":"filter","matches":[{"key":"${name}","value":"x"}]}`), 400, 'KMS.0403');
    expectKmsError(await kms.raw(`${name}/tags`, { method: 'GET' }), 400, 'KMS.0201');
  });

  it('binds encryption_context keys named like prototype members as ordinary keys', async () => {
    for (const name of PROTOTYPE_NAMES) {
      // Built from JSON text, so that "__proto__" is an own key as JSON.parse makes it.
      const contextJson = `{"${name}":"value"}`;
      const created = await kms.call('create-datakey', `{"key_id":"${keyId}","encryption_context":${contextJson}}`);
      expect({ name, status: created.status }).toEqual({ name, status: 200 });
      const decrypt = (binding: string): Promise<KmsResponse> =>
        kms.call('decrypt-datakey', `{"key_id":"${keyId}","cipher_text":"${created.body.cipher_text}","datakey_cipher_length":"32"${binding}}`);
      const opened = await decrypt(`,"encryption_context":${contextJson}`);
      expect({ name, status: opened.status }).toEqual({ name, status: 200 });
      expect(opened.body.data_key).toBe(created.body.plain_text);
      expectKmsError(await decrypt(''), 400, 'KMS.2201');
      expectKmsError(await decrypt(`,"encryption_context":{"${name}":"other"}`), 400, 'KMS.2201');
    }
  });
});

describe('aliases (v2) named like prototype members, and hostile alias requests', () => {
  it.each(PROTOTYPE_NAMES.filter((name) => /^[a-zA-Z0-9_]+$/.test(name)))('alias/%s is an alias like any other: made, resolved, listed, moved and deleted', async (name) => {
    const alias = `alias/${name}`;
    expect((await kms.call('aliases', { key_id: keyId, alias })).status).toBe(201);
    expect((await kms.call('describe-key', { key_id: alias })).body.key_info.key_id).toBe(keyId);
    expect((await kms.call('alias/associate', { alias, target_key_id: keyId })).status).toBe(200);
    const listed = await kms.raw(`aliases?key_id=${encodeURIComponent(alias)}`, { method: 'GET' });
    expect(listed.body.aliases.map((entry: { alias: string }) => entry.alias)).toContain(alias);
    const deleted = await kms.raw('aliases', { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key_id: keyId, aliases: [alias] }) });
    expect(deleted.status).toBe(204);
    expectKmsError(await kms.call('describe-key', { key_id: alias }), 404, 'KMS.0207');
  });

  it.each(PROTOTYPE_NAMES)('"%s" as a list-aliases query parameter, or as a bare alias, is refused', async (name) => {
    expectKmsError(await kms.raw(`aliases?${encodeURIComponent(name)}=1`, { method: 'GET' }), 400, 'KMS.0308');
    expectKmsError(await kms.call('aliases', { key_id: keyId, alias: name }), 400, 'KMS.1101');
    expectKmsError(await kms.call('describe-key', { key_id: name }), 400, 'KMS.0205');
  });

  it('refuses invalid UTF-8 in an alias body, on POST and DELETE alike', async () => {
    for (const method of ['POST', 'DELETE']) {
      const body = Buffer.concat([Buffer.from(`{"key_id":"${keyId}","alias":"alias/caf`), Buffer.from([0xe9]), Buffer.from('","aliases":["alias/x"]}')]);
      const response = await fetchResponse(`${t.service.url}/v1.0/project-a/kms/aliases`, {
        method,
        headers: { 'content-type': 'application/json', 'x-auth-token': await t.token('project-a') },
        body: new Uint8Array(body),
      });
      expectKmsError(response, 400, 'KMS.0202');
    }
  });
});

describe('bodies that are not UTF-8', () => {
  /** POSTs exactly these bytes as application/json (plus any other headers given). */
  async function postBytes(operation: string, bytes: Buffer, headers: Record<string, string> = {}): Promise<KmsResponse> {
    return fetchResponse(`${t.service.url}/v1.0/project-a/kms/${operation}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-auth-token': await t.token('project-a'), ...headers },
      body: new Uint8Array(bytes),
    });
  }

  /** JSON text with `bytes` spliced in where `@` stands. */
  function jsonWith(text: string, bytes: readonly number[]): Buffer {
    const at = text.indexOf('@');
    return Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bytes), Buffer.from(text.slice(at + 1))]);
  }

  const contextBody = (bytes: readonly number[], extra = ''): Buffer =>
    jsonWith(`{"key_id":"${keyId}","encryption_context":{"name":"caf@"}${extra}}`, bytes);
  const aadBody = (bytes: readonly number[], extra = ''): Buffer => jsonWith(`{"key_id":"${keyId}","additional_authenticated_data":"caf@"${extra}}`, bytes);

  /** Byte sequences that are not UTF-8, each of which a lenient decoder turns into U+FFFD. */
  const INVALID: Array<[string, number[]]> = [
    ['a Latin-1 é', [0xe9]],
    ['0xE8', [0xe8]],
    ['0xFF', [0xff]],
    ['a lone continuation byte', [0x80]],
    ['an overlong "/"', [0xc0, 0xaf]],
    ['a surrogate encoded as UTF-8 (CESU-8)', [0xed, 0xa0, 0x80]],
    ['a truncated three-byte sequence', [0xe2, 0x82]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
  ];

  it.each(INVALID)('refuses %s in encryption_context or additional_authenticated_data with KMS.0202', async (_label, bytes) => {
    for (const operation of ['create-datakey', 'create-datakey-without-plaintext']) {
      expectKmsError(await postBytes(operation, contextBody(bytes)), 400, 'KMS.0202');
      expectKmsError(await postBytes(operation, aadBody(bytes)), 400, 'KMS.0202');
    }
  });

  it('cannot open a blob bound to "caf\\uFFFD" with invalid bytes in their place', async () => {
    const opener = (blob: string): string => `,"cipher_text":"${blob}","datakey_cipher_length":"32"`;
    const byContext = await kms.call('create-datakey', { key_id: keyId, encryption_context: { name: 'caf\uFFFD' } });
    const byAad = await kms.call('create-datakey', { key_id: keyId, additional_authenticated_data: 'caf\uFFFD' });
    expect([byContext.status, byAad.status]).toEqual([200, 200]);
    for (const [, bytes] of INVALID) {
      expectKmsError(await postBytes('decrypt-datakey', contextBody(bytes, opener(byContext.body.cipher_text))), 400, 'KMS.0202');
      expectKmsError(await postBytes('decrypt-datakey', aadBody(bytes, opener(byAad.body.cipher_text))), 400, 'KMS.0202');
    }
    // The same text sent as valid UTF-8 opens it.
    const valid = await postBytes('decrypt-datakey', contextBody([0xef, 0xbf, 0xbd], opener(byContext.body.cipher_text)));
    expect(valid.status).toBe(200);
    expect(valid.body.data_key).toBe(byContext.body.plain_text);
  });

  it('binds é sent as UTF-8, which no other bytes open', async () => {
    const created = await postBytes('create-datakey', contextBody([0xc3, 0xa9]));
    expect(created.status).toBe(200);
    const opener = `,"cipher_text":"${created.body.cipher_text}","datakey_cipher_length":"32"`;
    expect((await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32', encryption_context: { name: 'café' } })).status).toBe(200);
    expectKmsError(await postBytes('decrypt-datakey', contextBody([0xc3, 0xa8], opener)), 400, 'KMS.2201');
    expectKmsError(await postBytes('decrypt-datakey', contextBody([0xef, 0xbf, 0xbd], opener)), 400, 'KMS.2201');
  });

  it('refuses invalid UTF-8 on every operation, wherever it is in the body', async () => {
    const bodies: Array<[string, Buffer]> = [
      ['create-key', jsonWith('{"key_alias":"caf@"}', [0xe9])],
      ['describe-key', jsonWith(`{"key_id":"${keyId}","ignored":"@"}`, [0xff])],
      ['list-keys', jsonWith('{"@":"1"}', [0x80])],
      ['encrypt-datakey', jsonWith(`{"key_id":"${keyId}","plain_text":"${'00'.repeat(64)}","datakey_plain_length":"32","additional_authenticated_data":"@"}`, [0xe9])],
      ['update-key-description', jsonWith(`{"key_id":"${keyId}","key_description":"caf@"}`, [0xe9])],
    ];
    for (const [operation, body] of bodies) {
      const response = await postBytes(operation, body);
      expect({ operation, status: response.status, code: response.body.error_code }).toEqual({ operation, status: 400, code: 'KMS.0202' });
    }
    expect((await kms.call('describe-key', { key_id: keyId })).body.key_info.key_description).toBe('');
  });

  it('refuses invalid UTF-8 in the tag operations\' bodies, and tags nothing', async () => {
    const bodies: Array<[string, Buffer]> = [
      [`${keyId}/tags`, jsonWith('{"tag":{"key":"caf@","value":"v"}}', [0xe9])],
      [`${keyId}/tags`, jsonWith('{"tag":{"key":"k","value":"caf@"}}', [0xed, 0xa0, 0x80])],
      [`${keyId}/tags/action`, jsonWith('{"action":"create","tags":[{"key":"caf@","value":""}]}', [0xc0, 0xaf])],
      ['resource_instances/action', jsonWith('{"action":"filter","matches":[{"key":"resource_name","value":"caf@"}]}', [0xff])],
    ];
    for (const [operation, body] of bodies) {
      const response = await postBytes(operation, body);
      expect({ operation, status: response.status, code: response.body.error_code }).toEqual({ operation, status: 400, code: 'KMS.0202' });
    }
    expect((await kms.raw(`${keyId}/tags`, { method: 'GET' })).body).toEqual({ tags: [], existTagsNum: 0 });
  });

  it('checks a compressed body once it is decompressed', async () => {
    const { gzipSync } = await import('node:zlib');
    expectKmsError(await postBytes('create-datakey', gzipSync(contextBody([0xe9])), { 'content-encoding': 'gzip' }), 400, 'KMS.0202');
    expect((await postBytes('create-datakey', gzipSync(contextBody([0xc3, 0xa9])), { 'content-encoding': 'gzip' })).status).toBe(200);
  });

  /** Text as UTF-32LE, with `@` standing for the code unit `unit`. */
  function utf32le(text: string, unit: number): Buffer {
    const units = [...text].map((char) => (char === '@' ? unit : char.codePointAt(0)!));
    const bytes = Buffer.alloc(units.length * 4);
    units.forEach((value, i) => bytes.writeUInt32LE(value, i * 4));
    return bytes;
  }

  it.each([
    ['utf-16', Buffer.from('{"limit":"1"}', 'utf16le')],
    // 0x110000 is no code point: a UTF-32 decoder turns it into U+FFFD.
    ['utf-32le', utf32le('{"a":"@"}', 0x110000)],
  ])('refuses a body declared as %s with KMS.0214: JSON between systems is UTF-8', async (charset, body) => {
    expectKmsError(await postBytes('list-keys', body, { 'content-type': `application/json; charset=${charset}` }), 400, 'KMS.0214');
  });

  it('refuses lone surrogates sent as escapes, as before: KMS.0208 in the context, KMS.0308 in the AAD', async () => {
    expectKmsError(await kms.call('create-datakey', `{"key_id":"${keyId}","encryption_context":{"name":"caf\\ud800"}}`), 400, 'KMS.0208');
    expectKmsError(await kms.call('create-datakey', `{"key_id":"${keyId}","additional_authenticated_data":"caf\\udc00"}`), 400, 'KMS.0308');
  });
});

describe('the import endpoints (BYOK)', () => {
  let external: string;
  beforeAll(async () => {
    const created = await kms.call('create-key', { key_alias: 'hostile-byok', origin: 'external' });
    expect(created.status).toBe(200);
    external = created.body.key_info.key_id;
  });

  it.each(PROTOTYPE_NAMES)('get-parameters-for-import refuses wrapping_algorithm "%s" with KMS.0308', async (name) => {
    expectKmsError(await kms.call('get-parameters-for-import', { key_id: external, wrapping_algorithm: name }), 400, 'KMS.0308');
  });

  const token = 'A'.repeat(212);
  const material = 'A'.repeat(344);
  it.each([
    ['get-parameters-for-import', {}, 'KMS.0204'],
    ['get-parameters-for-import', { key_id: 'not-a-key', wrapping_algorithm: 'RSAES_OAEP_SHA_256' }, 'KMS.0205'],
    ['get-parameters-for-import', { key_id: '{key}', wrapping_algorithm: 7 }, 'KMS.0308'],
    ['import-key-material', { key_id: '{key}', encrypted_key_material: material }, 'KMS.0204'],
    ['import-key-material', { key_id: '{key}', import_token: 12, encrypted_key_material: material }, 'KMS.2605'],
    ['import-key-material', { key_id: '{key}', import_token: '*'.repeat(212), encrypted_key_material: material }, 'KMS.2605'],
    ['import-key-material', { key_id: '{key}', import_token: 'A'.repeat(6145), encrypted_key_material: material }, 'KMS.2605'],
    ['import-key-material', { key_id: '{key}', import_token: token, encrypted_key_material: '%'.repeat(344) }, 'KMS.0308'],
    ['import-key-material', { key_id: '{key}', import_token: token, encrypted_key_material: 'A'.repeat(4000) }, 'KMS.0308'],
    ['import-key-material', { key_id: '{key}', import_token: token, encrypted_key_material: material, expiration_time: 'tomorrow' }, 'KMS.0308'],
    ['import-key-material', { key_id: '{key}', import_token: token, encrypted_key_material: material, expiration_time: -1 }, 'KMS.0308'],
    ['import-key-material', { key_id: '{key}', import_token: token, encrypted_key_material: material, expiration_time: 1e300 }, 'KMS.0308'],
    ['import-key-material', { key_id: '{key}', import_token: token, encrypted_key_material: material, encrypted_privatekey: { a: 1 } }, 'KMS.0308'],
    ['delete-imported-key-material', { key_id: 5 }, 'KMS.0205'],
  ])('%s refuses %j with its code, never a 500', async (operation, body, code) => {
    const filled = Object.fromEntries(Object.entries(body).map(([field, value]) => [field, value === '{key}' ? external : value]));
    expectKmsError(await kms.call(operation, filled), 400, code);
  });

  it.each(['get-parameters-for-import', 'import-key-material', 'delete-imported-key-material'])('%s: another method is KMS.0215, a body that is not JSON KMS.0202', async (operation) => {
    const auth = { 'x-auth-token': await t.token('project-a') };
    expect((await kms.raw(operation, { method: 'GET', headers: auth })).status).toBe(405);
    expectKmsError(await kms.call(operation, '{"key_id":'), 400, 'KMS.0202');
  });
});
