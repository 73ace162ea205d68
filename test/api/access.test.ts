import { expectKmsError, kmsClient, type KmsClient } from '../helpers/client';
import { startTestService, type TestService } from '../helpers/service';

let t: TestService;
let admin: KmsClient;
let keyOfA: string;

const UNKNOWN_KEY_ID = '0d0466b0-e727-4d9c-b35d-f84bb474a37f';

beforeAll(async () => {
  t = await startTestService();
  admin = t.client('project-a');
  keyOfA = (await admin.call('create-key', { key_alias: 'access' })).body.key_info.key_id;
});

afterAll(async () => {
  await t.stop();
});

function withToken(token: string | undefined, project = 'project-a'): KmsClient {
  return kmsClient(() => t.service.url, project, token === undefined ? {} : { 'x-auth-token': token });
}

describe('authentication', () => {
  it('refuses a request without credentials: 401 APIGW.0301', async () => {
    expectKmsError(await withToken(undefined).call('list-keys'), 401, 'APIGW.0301');
    expectKmsError(await withToken(undefined).call('create-datakey', { key_id: keyOfA }), 401, 'APIGW.0301');
  });

  it('refuses an unknown token and a malformed Authorization header the same way', async () => {
    expectKmsError(await withToken('kmst-not-a-real-token').call('list-keys'), 401, 'APIGW.0301');
    const response = await withToken(undefined).call('list-keys', {}); // baseline
    expect(response.status).toBe(401);
    const malformed = await withToken(undefined).raw('list-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Basic dXNlcjpwYXNz' },
      body: '{}',
    });
    expectKmsError(malformed, 401, 'APIGW.0301');
  });

  it('refuses a signature over headers named like Object.prototype members with 401, not 500', async () => {
    const date = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    for (const name of ['constructor', '__proto__', 'toString']) {
      const response = await withToken(undefined).raw('list-keys', {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-sdk-date': date,
          authorization: `SDK-HMAC-SHA256 Access=AKNOTKNOWN, SignedHeaders=${name};x-sdk-date, Signature=${'0'.repeat(64)}`,
        },
        body: '{}',
      });
      expectKmsError(response, 401, 'APIGW.0301');
    }
  });

  it('authenticates before it reads the body: an unauthenticated bad body is 401, not 400', async () => {
    expectKmsError(await withToken(undefined).call('create-key', '{not json'), 401, 'APIGW.0301');
    expectKmsError(await withToken(undefined).call('create-key', { key_alias: '' }), 401, 'APIGW.0301');
  });

  it('stops accepting a disabled or deleted token at once, and an expired one', async () => {
    const issued = t.service.credentials.createToken({ projectId: 'project-a', actions: ['kms:*'] });
    const client = withToken(issued.token);
    expect((await client.call('list-keys')).status).toBe(200);
    t.service.credentials.setEnabled(issued.token_id, false);
    expectKmsError(await client.call('list-keys'), 401, 'APIGW.0301');
    t.service.credentials.setEnabled(issued.token_id, true);
    expect((await client.call('list-keys')).status).toBe(200);
    t.service.credentials.remove(issued.token_id);
    expectKmsError(await client.call('list-keys'), 401, 'APIGW.0301');

    const shortLived = t.service.credentials.createToken({ projectId: 'project-a', actions: ['kms:*'], ttlMs: 60_000 });
    expect((await withToken(shortLived.token).call('list-keys')).status).toBe(200);
    t.clock.now += 61_000;
    expectKmsError(await withToken(shortLived.token).call('list-keys'), 401, 'APIGW.0301');
  });
});

describe('projects', () => {
  it("refuses project-b's credential on project-a's keys with the same 403, whether the key exists or not", async () => {
    const b = withToken(t.token('project-b'), 'project-a');
    const existing = await b.call('describe-key', { key_id: keyOfA });
    const missing = await b.call('describe-key', { key_id: UNKNOWN_KEY_ID });
    expectKmsError(existing, 403, 'KMS.0307');
    expectKmsError(missing, 403, 'KMS.0307');
    expect(existing.body.error_msg).toBe(missing.body.error_msg);
    expectKmsError(await b.call('create-datakey', { key_id: keyOfA }), 403, 'KMS.0307');
    expectKmsError(await b.call('list-keys'), 403, 'KMS.0307');
  });

  it('refuses an X-Project-Id that is not the project in the URL (KMS.0321)', async () => {
    const response = await admin.raw('list-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-project-id': 'project-b' },
      body: '{}',
    });
    expectKmsError(response, 403, 'KMS.0321');
    const matching = await admin.raw('list-keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-project-id': 'project-a' },
      body: '{}',
    });
    expect(matching.status).toBe(200);
  });
});

describe('permissions', () => {
  it('lets a data-key-only credential make and open data keys, and nothing else', async () => {
    const dataKeys = t.client('project-a', ['kms:dek:*']);
    const created = await dataKeys.call('create-datakey', { key_id: keyOfA });
    expect(created.status).toBe(200);
    const opened = await dataKeys.call('decrypt-datakey', { key_id: keyOfA, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.status).toBe(200);
    expect((await dataKeys.call('create-datakey-without-plaintext', { key_id: keyOfA })).status).toBe(200);

    expectKmsError(await dataKeys.call('create-key', { key_alias: 'not-allowed' }), 403, 'KMS.0307');
    expectKmsError(await dataKeys.call('disable-key', { key_id: keyOfA }), 403, 'KMS.0307');
    expectKmsError(await dataKeys.call('schedule-key-deletion', { key_id: keyOfA, pending_days: '7' }), 403, 'KMS.0307');
    expectKmsError(await dataKeys.call('describe-key', { key_id: keyOfA }), 403, 'KMS.0307');
    expectKmsError(await dataKeys.call('list-keys'), 403, 'KMS.0307');
    expect((await admin.call('describe-key', { key_id: keyOfA })).body.key_info.key_state).toBe('2');
  });

  it('lets a key-admin credential manage keys but not touch data keys', async () => {
    const keyAdmin = t.client('project-a', ['kms:cmk:*']);
    const created = await keyAdmin.call('create-key', { key_alias: 'by-key-admin' });
    expect(created.status).toBe(200);
    const keyId = created.body.key_info.key_id;
    expect((await keyAdmin.call('disable-key', { key_id: keyId })).status).toBe(200);
    expect((await keyAdmin.call('enable-key', { key_id: keyId })).status).toBe(200);
    expect((await keyAdmin.call('list-keys')).status).toBe(200);
    expectKmsError(await keyAdmin.call('create-datakey', { key_id: keyId }), 403, 'KMS.0307');
  });

  it('checks the exact permission: kms:dek:create does not allow kms:dek:crypto', async () => {
    const createOnly = t.client('project-a', ['kms:dek:create']);
    const created = await createOnly.call('create-datakey', { key_id: keyOfA });
    expect(created.status).toBe(200);
    expectKmsError(
      await createOnly.call('decrypt-datakey', { key_id: keyOfA, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' }),
      403,
      'KMS.0307',
    );
  });
});
