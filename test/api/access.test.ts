import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { expectKmsError, kmsClient, type KmsClient, type KmsResponse } from '../helpers/client';
import { useTestService } from '../helpers/service';
import { sign } from '../../src/identity/signer';

let keyOfA: string;

const UNKNOWN_KEY_ID = '0d0466b0-e727-4d9c-b35d-f84bb474a37f';

const t = useTestService();
const admin = t.client('project-a');

beforeAll(async () => {
  keyOfA = (await admin.call('create-key', { key_alias: 'access' })).body.key_info.key_id;
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
    const issued = await t.service.credentials.createToken({ projectId: 'project-a', actions: ['kms:*'] });
    const client = withToken(issued.token);
    expect((await client.call('list-keys')).status).toBe(200);
    await t.service.credentials.setEnabled(issued.token_id, false);
    expectKmsError(await client.call('list-keys'), 401, 'APIGW.0301');
    await t.service.credentials.setEnabled(issued.token_id, true);
    expect((await client.call('list-keys')).status).toBe(200);
    await t.service.credentials.remove(issued.token_id);
    expectKmsError(await client.call('list-keys'), 401, 'APIGW.0301');

    const shortLived = await t.service.credentials.createToken({ projectId: 'project-a', actions: ['kms:*'], ttlMs: 60_000 });
    expect((await withToken(shortLived.token).call('list-keys')).status).toBe(200);
    t.clock.now += 61_000;
    expectKmsError(await withToken(shortLived.token).call('list-keys'), 401, 'APIGW.0301');
  });
});

describe('projects', () => {
  it("refuses project-b's credential on project-a's keys with the same 403, whether the key exists or not", async () => {
    const b = withToken(await t.token('project-b'), 'project-a');
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

describe('what a signature must cover', () => {
  let credential: { ak: string; sk: string };

  beforeAll(async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:*'] });
    credential = { ak: issued.access_key, sk: issued.secret_key };
  });

  interface Signing {
    /** Headers sent besides content-type, host and x-sdk-date (all three sent and signed). */
    readonly headers?: Record<string, string>;
    /** The names signed, in order (default: every header sent); may name headers that are not sent. */
    readonly signedHeaders?: string[];
    /** The bytes the signature hashes (default: the bytes sent). */
    readonly signedBody?: Buffer;
    /** Builds the Authorization header from its parts (default: as the SDKs write it). */
    readonly authorization?: (parts: { ak: string; signedHeaders: string; signature: string }) => string;
  }

  /** POSTs `body` to list-keys, signed with a real access key as the test says, over node:http (exact Host). */
  function signedPost(body: Buffer, signing: Signing = {}): Promise<KmsResponse> {
    const url = new URL(`${t.service.url}/v1.0/project-a/kms/list-keys`);
    const date = new Date(t.clock.now).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const headers: Record<string, string> = { 'content-type': 'application/json', host: url.host, 'x-sdk-date': date, ...signing.headers };
    const names = signing.signedHeaders ?? Object.keys(headers).sort();
    const signature = sign(credential.sk, { method: 'POST', path: url.pathname, query: '', headers, body: signing.signedBody ?? body }, names, date);
    const parts = { ak: credential.ak, signedHeaders: names.join(';'), signature };
    headers.authorization = signing.authorization?.(parts) ?? `SDK-HMAC-SHA256 Access=${parts.ak}, SignedHeaders=${parts.signedHeaders}, Signature=${parts.signature}`;
    return new Promise((resolve, reject) => {
      const outgoing = request(url, { method: 'POST', headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // Not JSON: the test sees the text.
          }
          resolve({ status: response.statusCode!, headers: new Headers(response.headers as Record<string, string>), body: parsed });
        });
      });
      outgoing.on('error', reject);
      outgoing.end(body);
    });
  }

  const body = Buffer.from('{"limit":"1"}');

  it('accepts a request signed as the SDKs sign it (the baseline of the cases below)', async () => {
    expect((await signedPost(body)).status).toBe(200);
  });

  it('hashes a compressed body as it was sent, not as it decompresses', async () => {
    const compressed = gzipSync(body);
    const gzip = { 'content-encoding': 'gzip' };
    const asSent = await signedPost(compressed, { headers: gzip });
    expect(asSent.status).toBe(200);
    expect(asSent.body.total).toBeGreaterThanOrEqual(1);
    expectKmsError(await signedPost(compressed, { headers: gzip, signedBody: body }), 401, 'APIGW.0301');
  });

  it('refuses a compressed body larger than the body limit as sent, however small decompressed (KMS.0203)', async () => {
    const padded = Buffer.from(`{"pad":"${'x'.repeat(t.config.bodyLimitBytes - 10)}"}`);
    expect(padded.length).toBe(t.config.bodyLimitBytes);
    const stored = gzipSync(padded, { level: 0 }); // stored blocks: a few bytes larger than the input
    expect(stored.length).toBeGreaterThan(t.config.bodyLimitBytes);
    expectKmsError(await signedPost(stored, { headers: { 'content-encoding': 'gzip' } }), 400, 'KMS.0203');
  });

  it.each(['x-project-id', 'constructor', '__proto__', 'tostring'])('refuses a signature naming a header the request lacks (%s): 401', async (absent) => {
    const names = ['content-type', 'host', absent, 'x-sdk-date'];
    expectKmsError(await signedPost(body, { signedHeaders: names }), 401, 'APIGW.0301');
  });

  it('accepts 64 signed headers and refuses 65 or 500, all sent and signed correctly', async () => {
    const extra = (count: number): Record<string, string> => Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-h${String(i).padStart(3, '0')}`, 'v']));
    expect((await signedPost(body, { headers: extra(61) })).status).toBe(200); // 61 + content-type, host, x-sdk-date
    expectKmsError(await signedPost(body, { headers: extra(62) }), 401, 'APIGW.0301');
    expectKmsError(await signedPost(body, { headers: extra(497) }), 401, 'APIGW.0301');
  });

  it('refuses an Authorization header with a second Access= (or any parameter twice), whichever comes first', async () => {
    const twice: Array<Signing['authorization']> = [
      ({ ak, signedHeaders, signature }) => `SDK-HMAC-SHA256 Access=AKNOTKNOWN, SignedHeaders=${signedHeaders}, Signature=${signature}, Access=${ak}`,
      ({ ak, signedHeaders, signature }) => `SDK-HMAC-SHA256 Access=${ak}, SignedHeaders=${signedHeaders}, Signature=${signature}, Access=AKNOTKNOWN`,
      ({ ak, signedHeaders, signature }) => `SDK-HMAC-SHA256 Access=${ak}, SignedHeaders=${signedHeaders}, Signature=${signature}, Access=${ak}`,
      ({ ak, signedHeaders, signature }) => `SDK-HMAC-SHA256 Access=${ak}, SignedHeaders=${signedHeaders}, Signature=${'0'.repeat(64)}, Signature=${signature}`,
    ];
    for (const authorization of twice) expectKmsError(await signedPost(body, { authorization }), 401, 'APIGW.0301');
  });
});
