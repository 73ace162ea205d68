import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as pkcs11 from 'pkcs11js';
import { createKeyId, expectKmsError, kmsClient } from '../helpers/client';
import { rawObjectId } from '../helpers/key-attributes';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';

/**
 * generate-mac and verify-mac through the API. The service's HMAC keys never leave the token, so
 * the MACs are compared with Node's under a key the test knows: an HMAC key is made through the
 * API, then its token object is replaced, through the side channel, by one of a value the test
 * chose, with the same CKA_ID and label (the service finds it afresh when its handle is stale).
 */

let side: SideChannel;

const t = useTestService();
const kms = t.client('project-a');

beforeAll(async () => {
  side = new SideChannel(t.config.hsm);
});

let aliases = 0;
async function createKey(fields: Record<string, string> = {}): Promise<string> {
  return createKeyId(kms, `mac-${++aliases}`, fields);
}

/** An HMAC key made through the API whose token object now holds `value`. */
async function keyWithValue(spec: string, value: Buffer): Promise<string> {
  const keyId = await createKey({ key_spec: spec });
  const ref = { keyId, version: 0 };
  side.withSession((session) => {
    side.destroy(session, side.findKey(session, ref)!);
    side.createObject(session, [
      { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
      { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_GENERIC_SECRET },
      { type: pkcs11.CKA_TOKEN, value: true },
      { type: pkcs11.CKA_PRIVATE, value: true },
      { type: pkcs11.CKA_SIGN, value: true },
      { type: pkcs11.CKA_VERIFY, value: true },
      { type: pkcs11.CKA_VALUE, value },
      { type: pkcs11.CKA_ID, value: rawObjectId(ref) },
      { type: pkcs11.CKA_LABEL, value: `kms/${keyId}/v0` },
    ]);
  });
  return keyId;
}

const KINDS = [
  { spec: 'HMAC_256', algorithm: 'HMAC_SHA_256', hash: 'sha256', bytes: 32, other: 'HMAC_SHA_512' },
  { spec: 'HMAC_384', algorithm: 'HMAC_SHA_384', hash: 'sha384', bytes: 48, other: 'HMAC_SHA_256' },
  { spec: 'HMAC_512', algorithm: 'HMAC_SHA_512', hash: 'sha512', bytes: 64, other: 'HMAC_SHA_384' },
] as const;

describe.each(KINDS)('$spec', ({ spec, algorithm, hash, bytes, other }) => {
  it(`generate-mac answers Node's ${algorithm} in upper-case hex, and verify-mac accepts it (mac_valid a JSON boolean)`, async () => {
    const value = randomBytes(bytes);
    const keyId = await keyWithValue(spec, value);
    for (const message of [randomBytes(1), Buffer.from('the message'), randomBytes(4096)]) {
      const expected = createHmac(hash, value).update(message).digest('hex').toUpperCase();
      const generated = await kms.call('generate-mac', { key_id: keyId, mac_algorithm: algorithm, message: message.toString('base64') });
      expect(generated.status).toBe(200);
      expect(generated.body).toEqual({ key_id: keyId, mac_algorithm: algorithm, mac: expected });
      const body = { key_id: keyId, mac_algorithm: algorithm, message: message.toString('base64') };
      expect((await kms.call('verify-mac', { ...body, mac: expected })).body).toEqual({ key_id: keyId, mac_algorithm: algorithm, mac_valid: true });
      // Hex of either case is read.
      expect((await kms.call('verify-mac', { ...body, mac: expected.toLowerCase() })).body.mac_valid).toBe(true);
    }
  });

  it('verify-mac: a changed MAC, another message\'s or another key\'s is mac_valid false (a boolean, not an error)', async () => {
    const keyId = await createKey({ key_spec: spec });
    const message = Buffer.from('checked').toString('base64');
    const mac = (await kms.call('generate-mac', { key_id: keyId, mac_algorithm: algorithm, message })).body.mac as string;
    expect(mac).toMatch(new RegExp(`^[0-9A-F]{${bytes * 2}}$`));
    const body = { key_id: keyId, mac_algorithm: algorithm, message };
    expect((await kms.call('verify-mac', { ...body, mac })).body.mac_valid).toBe(true);
    const changed = (mac[0] === '0' ? '1' : '0') + mac.slice(1);
    const another = await createKey({ key_spec: spec });
    const anotherKeys = (await kms.call('generate-mac', { key_id: another, mac_algorithm: algorithm, message })).body.mac as string;
    const otherMessage = Buffer.from('another message').toString('base64');
    for (const [label, request] of [
      ['changed', { ...body, mac: changed }],
      ['another key\'s', { ...body, mac: anotherKeys }],
      ['another message\'s', { ...body, message: otherMessage, mac }],
    ] as const) {
      const verified = await kms.call('verify-mac', request);
      expect({ label, status: verified.status, body: verified.body }).toEqual({ label, status: 200, body: { key_id: keyId, mac_algorithm: algorithm, mac_valid: false } });
    }
  });

  it(`another algorithm than ${algorithm}, or HMAC_SM3, is KMS.0308 naming the one the key takes; a MAC of another length is KMS.0308`, async () => {
    const keyId = await createKey({ key_spec: spec });
    const message = Buffer.from('m').toString('base64');
    const refused = await kms.call('generate-mac', { key_id: keyId, mac_algorithm: other, message });
    expectKmsError(refused, 400, 'KMS.0308');
    expect(refused.body.error.error_msg).toContain(algorithm);
    const sm3 = await kms.call('generate-mac', { key_id: keyId, mac_algorithm: 'HMAC_SM3', message });
    expectKmsError(sm3, 400, 'KMS.0308');
    expect(sm3.body.error.error_msg).toContain('HMAC_SM3');
    const mac = (await kms.call('generate-mac', { key_id: keyId, mac_algorithm: algorithm, message })).body.mac as string;
    expectKmsError(await kms.call('verify-mac', { key_id: keyId, mac_algorithm: other, message, mac }), 400, 'KMS.0308');
    for (const wrong of [mac.slice(0, -2), `${mac}00`, 'AB']) {
      const response = await kms.call('verify-mac', { key_id: keyId, mac_algorithm: algorithm, message, mac: wrong });
      expectKmsError(response, 400, 'KMS.0308');
      // Past the longest MAC the schema refuses it; up to that, the service names the algorithm's length.
      expect(response.body.error.error_msg).toMatch(wrong.length > 128 ? /mac: must NOT have more than 128 characters/ : new RegExp(`${bytes * 2} hex digits`));
    }
  });
});

describe('refusals', () => {
  let hmacKey: string;
  beforeAll(async () => {
    hmacKey = await createKey({ key_spec: 'HMAC_256' });
  });
  const message = Buffer.from('m').toString('base64');

  it('an AES key is KMS.0331, a key pair KMS.0325, on both operations, before the HSM is asked', async () => {
    const aes = await createKey();
    const ec = await createKey({ key_spec: 'EC_P256' });
    const agreement = await createKey({ key_spec: 'EC_P256', key_usage: 'KEY_AGREEMENT' });
    for (const [keyId, code] of [[aes, 'KMS.0331'], [ec, 'KMS.0325'], [agreement, 'KMS.0325']] as const) {
      const generated = await kms.call('generate-mac', { key_id: keyId, mac_algorithm: 'HMAC_SHA_256', message });
      expectKmsError(generated, 400, code);
      expect(generated.body.error.error_msg).toContain('GENERATE_VERIFY_MAC');
      expectKmsError(await kms.call('verify-mac', { key_id: keyId, mac_algorithm: 'HMAC_SHA_256', message, mac: '00'.repeat(32) }), 400, code);
    }
  });

  it('an HMAC key refuses the other operations (KMS.0341), as it did before MACs were served', async () => {
    expectKmsError(await kms.call('encrypt-data', { key_id: hmacKey, plain_text: 'x' }), 400, 'KMS.0341');
    expectKmsError(await kms.call('sign', { key_id: hmacKey, signing_algorithm: 'ECDSA_SHA_256', message: Buffer.alloc(32).toString('base64') }), 400, 'KMS.0341');
  });

  it.each([
    ['an empty message', { message: '' }],
    ['a message over 4096 bytes', { message: randomBytes(4097).toString('base64') }],
    ['a message that is not base64', { message: 'not base64!' }],
    ['non-canonical base64', { message: 'bR==' }],
    ['an unknown mac_algorithm', { mac_algorithm: 'HMAC_MD5' }],
  ])('generate-mac with %s is KMS.0308', async (_label, fields) => {
    expectKmsError(await kms.call('generate-mac', { key_id: hmacKey, mac_algorithm: 'HMAC_SHA_256', message, ...fields }), 400, 'KMS.0308');
  });

  it.each(['key_id', 'mac_algorithm', 'message'])('generate-mac without %s is KMS.0204', async (field) => {
    const body: Record<string, string> = { key_id: hmacKey, mac_algorithm: 'HMAC_SHA_256', message };
    delete body[field];
    expectKmsError(await kms.call('generate-mac', body), 400, 'KMS.0204');
  });

  it.each(['key_id', 'mac_algorithm', 'message', 'mac'])('verify-mac without %s is KMS.0204', async (field) => {
    const body: Record<string, string> = { key_id: hmacKey, mac_algorithm: 'HMAC_SHA_256', message, mac: '00'.repeat(32) };
    delete body[field];
    expectKmsError(await kms.call('verify-mac', body), 400, 'KMS.0204');
  });

  it.each([
    ['a mac that is not hex', 'zz'.repeat(32)],
    ['a mac of an odd number of digits', '0'.repeat(63)],
    ['an empty mac', ''],
  ])('verify-mac with %s is KMS.0308', async (_label, mac) => {
    expectKmsError(await kms.call('verify-mac', { key_id: hmacKey, mac_algorithm: 'HMAC_SHA_256', message, mac }), 400, 'KMS.0308');
  });

  it('a disabled key is KMS.0209, an unknown one KMS.0207', async () => {
    const keyId = await createKey({ key_spec: 'HMAC_256' });
    expect((await kms.call('disable-key', { key_id: keyId })).status).toBe(200);
    expectKmsError(await kms.call('generate-mac', { key_id: keyId, mac_algorithm: 'HMAC_SHA_256', message }), 400, 'KMS.0209');
    expectKmsError(await kms.call('generate-mac', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f', mac_algorithm: 'HMAC_SHA_256', message }), 404, 'KMS.0207');
  });
});

describe('permissions and grants', () => {
  it('generate-mac needs kms:cmk:generateMac and verify-mac kms:cmk:verifyMac', async () => {
    const keyId = await createKey({ key_spec: 'HMAC_256' });
    const body = { key_id: keyId, mac_algorithm: 'HMAC_SHA_256', message: Buffer.from('p').toString('base64') };
    const maker = t.client('project-a', ['kms:cmk:generateMac']);
    const generated = await maker.call('generate-mac', body);
    expect(generated.status).toBe(200);
    expectKmsError(await maker.call('verify-mac', { ...body, mac: generated.body.mac }), 403, 'KMS.0307');
    expect((await t.client('project-a', ['kms:cmk:verifyMac']).call('verify-mac', { ...body, mac: generated.body.mac })).body.mac_valid).toBe(true);
    expectKmsError(await t.client('project-a', ['kms:cmk:verifyMac']).call('generate-mac', body), 403, 'KMS.0307');
    expectKmsError(await t.client('project-a', ['kms:cmk:sign', 'kms:cmk:crypto']).call('generate-mac', body), 403, 'KMS.0307');
  });

  it('a grantee of another project makes MACs with a grant naming generate-mac, and cannot verify without verify-mac', async () => {
    const keyId = await createKey({ key_spec: 'HMAC_256' });
    const issued = await t.service.credentials.createToken({ projectId: 'project-grantee', actions: ['kms:grant:list'] });
    const grantee = kmsClient(() => t.service.url, 'project-a', { 'x-auth-token': issued.token });
    const body = { key_id: keyId, mac_algorithm: 'HMAC_SHA_256', message: Buffer.from('granted').toString('base64') };
    expectKmsError(await grantee.call('generate-mac', body), 403, 'KMS.0307');
    const granted = await kms.call('create-grant', { key_id: keyId, grantee_principal: issued.principal_id, operations: ['generate-mac'] });
    expect(granted.status).toBe(200);
    const generated = await grantee.call('generate-mac', body);
    expect(generated.status).toBe(200);
    expectKmsError(await grantee.call('verify-mac', { ...body, mac: generated.body.mac }), 403, 'KMS.0307');
    expect((await kms.call('create-grant', { key_id: keyId, grantee_principal: issued.principal_id, operations: ['verify-mac'] })).status).toBe(200);
    expect((await grantee.call('verify-mac', { ...body, mac: generated.body.mac })).body.mac_valid).toBe(true);
  });
});

describe('the audit trail of generate-mac and verify-mac', () => {
  function recordOf(requestId: string | null): string {
    const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter((line) => line.includes(`"request_id":"${requestId}"`));
    expect(lines).toHaveLength(1);
    return lines[0]!;
  }

  it('names the key and the algorithm, never the message or the MAC', async () => {
    const keyId = await createKey({ key_spec: 'HMAC_384' });
    const message = Buffer.from('a secret message to authenticate').toString('base64');
    const generated = await kms.call('generate-mac', { key_id: keyId, mac_algorithm: 'HMAC_SHA_384', message });
    expect(generated.status).toBe(200);
    const mac = generated.body.mac as string;
    const verified = await kms.call('verify-mac', { key_id: keyId, mac_algorithm: 'HMAC_SHA_384', message, mac });
    expect(verified.body.mac_valid).toBe(true);
    for (const [response, action, permission] of [[generated, 'generate-mac', 'kms:cmk:generateMac'], [verified, 'verify-mac', 'kms:cmk:verifyMac']] as const) {
      const line = recordOf(response.headers.get('x-request-id'));
      expect(JSON.parse(line)).toMatchObject({ action, permission, key_id: keyId, algorithm: 'HMAC_SHA_384', result: 'OK' });
      expect(line).not.toContain(message);
      expect(line).not.toContain(Buffer.from(message, 'base64').toString('hex'));
      expect(line.toUpperCase()).not.toContain(mac);
    }
  });
});

describe('generate-mac and verify-mac through the official SDK\'s signer', () => {
  it('an HMAC_256 key made, a MAC made and checked, each request signed by the SDK core; mac_valid is a JSON boolean', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-key', { key_alias: 'sdk-mac', key_spec: 'HMAC_256', key_usage: 'GENERATE_VERIFY_MAC' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;
    const body = { key_id: keyId, mac_algorithm: 'HMAC_SHA_256', message: Buffer.from('authenticated through the SDK').toString('base64') };
    const generated = await sdk.call('generate-mac', body);
    expect(generated.status).toBe(200);
    expect(generated.body.mac).toMatch(/^[0-9A-F]{64}$/);
    expect((await sdk.call('verify-mac', { ...body, mac: generated.body.mac })).body).toEqual({ key_id: keyId, mac_algorithm: 'HMAC_SHA_256', mac_valid: true });
    expect((await sdk.call('verify-mac', { ...body, mac: '00'.repeat(32) })).body.mac_valid).toBe(false);
    const refused = await sdk.call('generate-mac', { ...body, mac_algorithm: 'HMAC_SHA_512' });
    expect(refused).toMatchObject({ status: 400, errorCode: 'KMS.0308' });
  });
});
