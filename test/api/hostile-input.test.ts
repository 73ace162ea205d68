/**
 * Values a hostile client chooses to trip the service's own lookups: the names of
 * Object.prototype's members wherever a field's string is looked up, and bodies whose bytes are
 * not UTF-8. Each gets its documented 4xx, never a 500, and never binds like another value.
 */
import { expectKmsError, fetchResponse, type KmsClient, type KmsResponse } from '../helpers/client';
import { startTestService, type TestService } from '../helpers/service';

/** Names an object literal inherits from Object.prototype (and `__proto__`, which JSON.parse makes an own key). */
const PROTOTYPE_NAMES = ['constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty', 'isPrototypeOf', '__defineGetter__'];

let t: TestService;
let kms: KmsClient;
let keyId: string;

beforeAll(async () => {
  t = await startTestService();
  kms = t.client('project-a');
  const created = await kms.call('create-key', { key_alias: 'hostile-input' });
  expect(created.status).toBe(200);
  keyId = created.body.key_info.key_id;
});

afterAll(async () => {
  await t?.stop();
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
      headers: { 'content-type': 'application/json', 'x-auth-token': t.token('project-a') },
      body: '{}',
    });
    expectKmsError(response, 400, 'KMS.0201');
  });

  it.each(PROTOTYPE_NAMES)('"%s" as X-Auth-Token is 401, as X-Project-Id KMS.0321', async (name) => {
    const send = (headers: Record<string, string>): Promise<KmsResponse> =>
      fetchResponse(`${t.service.url}/v1.0/project-a/kms/list-keys`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{}' });
    expectKmsError(await send({ 'x-auth-token': name }), 401, 'APIGW.0301');
    expectKmsError(await send({ 'x-auth-token': t.token('project-a'), 'x-project-id': name }), 403, 'KMS.0321');
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
