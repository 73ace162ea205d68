import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';

/**
 * Contract tests with the official Huawei Cloud Node.js SDK core as the client: it signs every
 * request itself (SDK-HMAC-SHA256), so these prove that a real SDK's signatures verify here.
 */

let admin: ReturnType<typeof sdkClient>;
let adminSecret: { ak: string; sk: string };

async function accessKey(projectId: string, actions: string[]): Promise<{ ak: string; sk: string }> {
  const issued = await t.service.credentials.createAccessKey({ projectId, actions });
  return { ak: issued.access_key, sk: issued.secret_key };
}

function client(projectId: string, credential: { ak: string; sk: string }, endpoint = t.service.url): ReturnType<typeof sdkClient> {
  return sdkClient({ endpoint, projectId, ...credential });
}

const t = useTestService();

beforeAll(async () => {
  adminSecret = await accessKey('project-a', ['kms:*']);
  admin = client('project-a', adminSecret);
});

describe('every endpoint, signed by the official SDK', () => {
  it('runs the whole key and data key lifecycle', async () => {
    const created = await admin.call('create-key', { key_alias: 'sdk-key', key_description: 'made by the SDK' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;

    expect((await admin.call('describe-key', { key_id: keyId })).body.key_info).toMatchObject({ key_alias: 'sdk-key', key_state: '2' });
    expect((await admin.call('list-keys', { limit: '10' })).body.keys).toContain(keyId);
    expect((await admin.call('update-key-alias', { key_id: keyId, key_alias: 'sdk-key-renamed' })).body.key_info.key_alias).toBe('sdk-key-renamed');
    expect((await admin.call('update-key-description', { key_id: keyId, key_description: 'still the SDK' })).status).toBe(200);
    expect((await admin.call('disable-key', { key_id: keyId })).body.key_info.key_state).toBe('3');
    expect((await admin.call('enable-key', { key_id: keyId })).body.key_info.key_state).toBe('2');

    const dataKey = await admin.call('create-datakey', { key_id: keyId, datakey_length: '512', encryption_context: { app: 'sdk' } });
    expect(dataKey.status).toBe(200);
    const opened = await admin.call('decrypt-datakey', {
      key_id: keyId,
      cipher_text: dataKey.body.cipher_text,
      datakey_cipher_length: '64',
      encryption_context: { app: 'sdk' },
    });
    expect(opened.body.data_key).toBe(dataKey.body.plain_text);

    const sealedOnly = await admin.call('create-datakey-without-plaintext', { key_id: keyId, additional_authenticated_data: 'aad' });
    expect(sealedOnly.status).toBe(200);
    const dek = '11'.repeat(32);
    const digest = require('node:crypto').createHash('sha256').update(Buffer.from(dek, 'hex')).digest('hex');
    const encrypted = await admin.call('encrypt-datakey', { key_id: keyId, plain_text: dek + digest, datakey_plain_length: '32' });
    expect(encrypted.body.datakey_length).toBe('32');

    expect((await admin.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).body.key_state).toBe('4');
    expect((await admin.call('cancel-key-deletion', { key_id: keyId })).body.key_state).toBe('3');
  });

  it('hands the SDK our error codes (it reads them at the top level) and the request id', async () => {
    const missing = await admin.call('describe-key', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f' });
    expect(missing).toMatchObject({ status: 404, errorCode: 'KMS.0207', errorMsg: 'The key does not exist.' });
    expect(missing.requestId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe('grants, quotas and versions, signed by the official SDK', () => {
  it('grants a key to another access key, which uses it, lists what it may retire and retires it', async () => {
    const keyId = (await admin.call('create-key', { key_alias: 'sdk-granted' })).body.key_info.key_id;
    // A credential of another project, without any data key permission: its access key is its principal id.
    const granteeSecret = await accessKey('project-b', ['kms:grant:list']);
    const grantee = client('project-b', granteeSecret);
    const granteeOnA = client('project-a', granteeSecret);

    const created = await admin.call('create-grant', {
      key_id: keyId,
      grantee_principal: granteeSecret.ak,
      retiring_principal: granteeSecret.ak,
      operations: ['create-datakey', 'decrypt-datakey'],
      name: 'sdk-grant',
    });
    expect(created.status).toBe(200);
    const grantId: string = created.body.grant_id;

    const listed = await admin.call('list-grants', { key_id: keyId, limit: '10' });
    expect(listed.body).toMatchObject({ truncated: 'false', total: 1, next_marker: '' });
    expect(listed.body.grants[0]).toMatchObject({ grant_id: grantId, grantee_principal: granteeSecret.ak, operations: ['create-datakey', 'decrypt-datakey'] });

    const dataKey = await granteeOnA.call('create-datakey', { key_id: keyId });
    expect(dataKey.status).toBe(200);
    expect(await granteeOnA.call('describe-key', { key_id: keyId })).toMatchObject({ status: 403, errorCode: 'KMS.0307' });

    const retirable = await grantee.call('list-retirable-grants', {});
    expect(retirable.body).toMatchObject({ total: 1, truncated: 'false', grants: [expect.objectContaining({ grant_id: grantId, key_id: keyId })] });
    expect((await granteeOnA.call('retire-grant', { key_id: keyId, grant_id: grantId })).status).toBe(200);
    expect(await granteeOnA.call('create-datakey', { key_id: keyId })).toMatchObject({ status: 403, errorCode: 'KMS.0307' });

    const again = (await admin.call('create-grant', { key_id: keyId, grantee_principal: granteeSecret.ak, operations: ['describe-key'] })).body.grant_id;
    expect((await admin.call('revoke-grant', { key_id: keyId, grant_id: again })).status).toBe(200);
    expect(await admin.call('revoke-grant', { key_id: keyId, grant_id: again })).toMatchObject({ status: 400, errorCode: 'KMS.2501' });
    expect(await admin.call('create-grant', { key_id: keyId, grantee_principal: granteeSecret.ak, operations: ['create-grant'] })).toMatchObject({
      status: 400,
      errorCode: 'KMS.2401',
    });
  });

  it('reads user-quotas and user-instances (GETs without a body) as JSON numbers', async () => {
    const quotas = await admin.request({ method: 'GET', url: '/v1.0/{project_id}/kms/user-quotas' });
    expect(quotas.status).toBe(200);
    expect(quotas.body.quotas.resources).toEqual([
      { type: 'CMK', used: expect.any(Number), quota: 100000 },
      { type: 'grant_per_CMK', used: expect.any(Number), quota: 100 },
    ]);
    const instances = await admin.request({ method: 'GET', url: '/v1.0/{project_id}/kms/user-instances' });
    expect(instances).toMatchObject({ status: 200, body: { instance_num: quotas.body.quotas.resources[0].used } });
  });

  it('reads the version documents (signed, which they do not need)', async () => {
    expect((await admin.request({ method: 'GET', url: '/' })).body.versions[0]).toMatchObject({ id: 'v1.0', status: 'CURRENT' });
    expect((await admin.request({ method: 'GET', url: '/{version_id}', pathParams: { version_id: 'v1.0' } })).body.version).toMatchObject({ id: 'v1.0' });
  });
});

describe('what the SDK is refused', () => {
  it('a wrong secret key: 401 APIGW.0301', async () => {
    const wrong = client('project-a', { ak: adminSecret.ak, sk: 'x'.repeat(40) });
    expect(await wrong.call('list-keys', {})).toMatchObject({ status: 401, errorCode: 'APIGW.0301' });
  });

  it('an unknown access key: the same 401', async () => {
    const unknown = client('project-a', { ak: 'AKNOTKNOWNTOTHEKMS00', sk: adminSecret.sk });
    expect(await unknown.call('list-keys', {})).toMatchObject({ status: 401, errorCode: 'APIGW.0301' });
  });

  it('a disabled access key, at once', async () => {
    const credential = await accessKey('project-a', ['kms:*']);
    const sdk = client('project-a', credential);
    expect((await sdk.call('list-keys', {})).status).toBe(200);
    await t.service.credentials.setEnabled(credential.ak, false);
    expect(await sdk.call('list-keys', {})).toMatchObject({ status: 401, errorCode: 'APIGW.0301' });
  });

  it("project-a's credential on project-b's keys: 403, whether the key exists or not", async () => {
    const bKey = (await client('project-b', await accessKey('project-b', ['kms:*'])).call('create-key', { key_alias: 'b-key' })).body.key_info.key_id;
    const aOnB = client('project-b', adminSecret);
    const existing = await aOnB.call('describe-key', { key_id: bKey });
    const missing = await aOnB.call('describe-key', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f' });
    expect(existing).toMatchObject({ status: 403, errorCode: 'KMS.0307' });
    expect(missing).toMatchObject({ status: 403, errorCode: 'KMS.0307', errorMsg: existing.errorMsg });
    expect(await aOnB.call('create-datakey', { key_id: bKey })).toMatchObject({ status: 403, errorCode: 'KMS.0307' });
  });

  it('a data-key-only credential trying key administration: 403 KMS.0307', async () => {
    const keyId = (await admin.call('create-key', { key_alias: 'for-dek-user' })).body.key_info.key_id;
    const dekUser = client('project-a', await accessKey('project-a', ['kms:dek:*']));
    expect((await dekUser.call('create-datakey', { key_id: keyId })).status).toBe(200);
    for (const [operation, body] of [
      ['create-key', { key_alias: 'not-mine' }],
      ['disable-key', { key_id: keyId }],
      ['schedule-key-deletion', { key_id: keyId, pending_days: '7' }],
      ['update-key-alias', { key_id: keyId, key_alias: 'hijacked' }],
    ] as const) {
      expect({ operation, ...(await dekUser.call(operation, body)) }).toMatchObject({ operation, status: 403, errorCode: 'KMS.0307' });
    }
  });
});

/** A pass-through proxy that remembers the last request it forwarded, exactly as it came. */
interface Captured {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

async function recordingProxy(target: () => string): Promise<{ server: Server; last: () => Captured; url: () => string }> {
  let last: Captured | undefined;
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      last = { method: incoming.method!, url: incoming.url!, headers: incoming.headers, body: Buffer.concat(chunks) };
      send(target(), last).then(
        ({ status, body }) => outgoing.writeHead(status, { 'content-type': 'application/json' }).end(body),
        () => outgoing.writeHead(502).end(),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    last: () => last!,
    url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  };
}

/** Sends a request with exactly these headers (Host included, which fetch would not allow). */
function send(base: string, captured: Captured): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = request(`${base}${captured.url}`, { method: captured.method, headers: captured.headers }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode!, body }));
    });
    outgoing.on('error', reject);
    outgoing.end(captured.body);
  });
}

describe('a signed request, captured on its way and sent again', () => {
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let keyId: string;
  let captured: Captured;

  beforeAll(async () => {
    keyId = (await admin.call('create-key', { key_alias: 'replayed' })).body.key_info.key_id;
    proxy = await recordingProxy(() => t.service.url);
    const viaProxy = client('project-a', adminSecret, proxy.url());
    expect((await viaProxy.call('create-datakey', { key_id: keyId, datakey_length: '256' })).status).toBe(200);
    captured = proxy.last();
  });

  afterAll(() => new Promise<void>((resolve) => proxy.server.close(() => resolve())));

  it('is refused with a tampered body (401 APIGW.0301)', async () => {
    const tampered = { ...captured, body: Buffer.from(captured.body.toString().replace('"256"', '"512"')) };
    expect(tampered.body.equals(captured.body)).toBe(false);
    const response = await send(t.service.url, tampered);
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body).error_code).toBe('APIGW.0301');
  });

  it('is refused with a changed signed header', async () => {
    const response = await send(t.service.url, { ...captured, headers: { ...captured.headers, 'x-project-id': 'project-b' } });
    expect(response.status).toBe(401);
  });

  it('is accepted again within the 15-minute window, and refused once it has passed', async () => {
    expect((await send(t.service.url, captured)).status).toBe(200);
    const saved = t.clock.now;
    try {
      t.clock.now += 16 * 60_000;
      const late = await send(t.service.url, captured);
      expect(late.status).toBe(401);
      expect(JSON.parse(late.body)).toMatchObject({ error_code: 'APIGW.0301', error_msg: expect.stringContaining('expired') });
      t.clock.now = saved - 16 * 60_000; // a clock 16 minutes behind the client's
      expect((await send(t.service.url, captured)).status).toBe(401);
    } finally {
      t.clock.now = saved;
    }
  });
});
