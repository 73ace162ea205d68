import { createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createKeyId, expectKmsError, kmsClient } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';
import type { KeySpec } from '../../src/hsm/hsm';

/**
 * derive-shared-secret: ECDH in the token between a KEY_AGREEMENT EC key's private key and a peer's
 * public key (base64 DER SubjectPublicKeyInfo). The shared secret must be the one the peer computes
 * with Node's ECDH and the key's public key from get-publickey. Specs the module cannot make
 * (secp256k1 on NSS's softoken) are skipped there: create-key's refusal is signing.test.ts'.
 */

const t = useTestService();
const kms = t.client('project-a');

const NODE_CURVE: Readonly<Record<'EC_P256' | 'EC_P384' | 'SECP256K1', string>> = { EC_P256: 'prime256v1', EC_P384: 'secp384r1', SECP256K1: 'secp256k1' };

let aliases = 0;
async function createKey(fields: Record<string, string>): Promise<string> {
  return createKeyId(kms, `agree-${++aliases}`, fields);
}

async function publicKeyOf(keyId: string): Promise<KeyObject> {
  const response = await kms.call('get-publickey', { key_id: keyId });
  expect(response.status).toBe(200);
  return createPublicKey(response.body.public_key as string);
}

function peerOf(curve: string): { privateKey: KeyObject; spki: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return { privateKey, spki: publicKey.export({ format: 'der', type: 'spki' }).toString('base64') };
}

let p256Key: string;

beforeAll(async () => {
  p256Key = await createKey({ key_spec: 'EC_P256', key_usage: 'KEY_AGREEMENT' });
});

describe('the shared secret', () => {
  it.each(['EC_P256', 'EC_P384', 'SECP256K1'] as const)('%s: equal to the peer\'s own ECDH with the key from get-publickey', async (spec) => {
    if (!t.service.hsm.supports(spec as KeySpec, 'KEY_AGREEMENT')) return;
    const keyId = spec === 'EC_P256' ? p256Key : await createKey({ key_spec: spec, key_usage: 'KEY_AGREEMENT' });
    const peer = peerOf(NODE_CURVE[spec]);
    const response = await kms.call('derive-shared-secret', { key_id: keyId, key_agreement_algorithm: 'ECDH', public_key: peer.spki });
    expect(response.status).toBe(200);
    const expected = diffieHellman({ privateKey: peer.privateKey, publicKey: await publicKeyOf(keyId) });
    expect(response.body).toEqual({ key_id: keyId, key_agreement_algorithm: 'ECDH', shared_secret: expected.toString('base64') });
  });

  it('each peer gets its own secret', async () => {
    const [a, b] = [peerOf('prime256v1'), peerOf('prime256v1')];
    const secretA = (await kms.call('derive-shared-secret', { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: a.spki })).body.shared_secret;
    const secretB = (await kms.call('derive-shared-secret', { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: b.spki })).body.shared_secret;
    expect(secretA).not.toBe(secretB);
  });
});

describe('peer keys that are not one of the key\'s curve', () => {
  it('a peer key on another curve is KMS.0308 naming the key\'s curve', async () => {
    const response = await kms.call('derive-shared-secret', { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: peerOf('secp384r1').spki });
    expectKmsError(response, 400, 'KMS.0308');
    expect(response.body.error.error_msg).toContain('P-256');
  });

  it('a point off the curve is KMS.0308', async () => {
    const spki = Buffer.from(peerOf('prime256v1').spki, 'base64');
    // The last byte of y: the point (x, y') is not on the curve.
    spki[spki.length - 1]! ^= 0x01;
    expectKmsError(await kms.call('derive-shared-secret', { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: spki.toString('base64') }), 400, 'KMS.0308');
  });

  it('an RSA public key, bytes that are no DER, and base64 that is not canonical are KMS.0308', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    for (const publicKey of [rsa, Buffer.from('not a key').toString('base64'), 'QQ']) {
      expectKmsError(await kms.call('derive-shared-secret', { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: publicKey }), 400, 'KMS.0308');
    }
  });
});

describe('requests that are refused', () => {
  it('a key not made for KEY_AGREEMENT is refused before the HSM: EC for SIGN_VERIFY and RSA (KMS.0308), AES (KMS.0331), HMAC (KMS.0341)', async () => {
    const peer = peerOf('prime256v1').spki;
    for (const [fields, code] of [
      [{ key_spec: 'EC_P256', key_usage: 'SIGN_VERIFY' }, 'KMS.0308'],
      [{ key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' }, 'KMS.0308'],
      [{}, 'KMS.0331'],
      [{ key_spec: 'HMAC_256' }, 'KMS.0341'],
    ] as const) {
      const keyId = await createKey(fields);
      expectKmsError(await kms.call('derive-shared-secret', { key_id: keyId, key_agreement_algorithm: 'ECDH', public_key: peer }), 400, code);
    }
  });

  it('an algorithm other than ECDH, or a recipient (attestation, not served), is KMS.0308', async () => {
    const peer = peerOf('prime256v1').spki;
    expectKmsError(await kms.call('derive-shared-secret', { key_id: p256Key, key_agreement_algorithm: 'DH', public_key: peer }), 400, 'KMS.0308');
    const recipient = { attestation_document: 'AAAA', key_encryption_algorithm: 'RSAES_OAEP_SHA_256' };
    const refused = await kms.call('derive-shared-secret', { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: peer, recipient });
    expectKmsError(refused, 400, 'KMS.0308');
    expect(refused.body.error.error_msg).toContain('recipient');
  });

  it('a disabled key is KMS.0209', async () => {
    const keyId = await createKey({ key_spec: 'EC_P256', key_usage: 'KEY_AGREEMENT' });
    expect((await kms.call('disable-key', { key_id: keyId })).status).toBe(200);
    expectKmsError(await kms.call('derive-shared-secret', { key_id: keyId, key_agreement_algorithm: 'ECDH', public_key: peerOf('prime256v1').spki }), 400, 'KMS.0209');
  });
});

describe('access, grants and audit', () => {
  it('needs kms:cmk:deriveSharedSecret; kms:cmk:crypto does not allow it', async () => {
    const body = { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: peerOf('prime256v1').spki };
    expect((await t.client('project-a', ['kms:cmk:deriveSharedSecret']).call('derive-shared-secret', body)).status).toBe(200);
    expectKmsError(await t.client('project-a', ['kms:cmk:crypto']).call('derive-shared-secret', body), 403, 'KMS.0307');
  });

  it('a grantee derives with a grant naming derive-shared-secret, and only then', async () => {
    const issued = await t.service.credentials.createToken({ projectId: 'project-grantee', actions: ['kms:grant:list'] });
    const grantee = kmsClient(() => t.service.url, 'project-a', { 'x-auth-token': issued.token });
    const body = { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: peerOf('prime256v1').spki };
    expectKmsError(await grantee.call('derive-shared-secret', body), 403, 'KMS.0307');
    const granted = await kms.call('create-grant', { key_id: p256Key, grantee_principal: issued.principal_id, operations: ['derive-shared-secret'] });
    expect(granted.status).toBe(200);
    expect((await grantee.call('derive-shared-secret', body)).status).toBe(200);
  });

  it('the audit record names the key and ECDH, never the peer key or the secret', async () => {
    const peer = peerOf('prime256v1');
    const response = await kms.call('derive-shared-secret', { key_id: p256Key, key_agreement_algorithm: 'ECDH', public_key: peer.spki });
    expect(response.status).toBe(200);
    const secret = response.body.shared_secret as string;
    const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter((line) => line.includes(`"request_id":"${response.headers.get('x-request-id')}"`));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ action: 'derive-shared-secret', permission: 'kms:cmk:deriveSharedSecret', key_id: p256Key, algorithm: 'ECDH', result: 'OK' });
    expect(lines[0]).not.toContain(secret);
    expect(lines[0]).not.toContain(Buffer.from(secret, 'base64').toString('hex'));
    expect(lines[0]).not.toContain(peer.spki);
  });
});

describe('through the official SDK\'s signer', () => {
  it('an EC_P256 KEY_AGREEMENT key agrees a secret equal to the peer\'s own ECDH', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-key', { key_alias: 'sdk-agreement', key_spec: 'EC_P256', key_usage: 'KEY_AGREEMENT' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;
    const ours = createPublicKey((await sdk.call('get-publickey', { key_id: keyId })).body.public_key as string);
    const peer = peerOf('prime256v1');
    const derived = await sdk.call('derive-shared-secret', { key_id: keyId, key_agreement_algorithm: 'ECDH', public_key: peer.spki });
    expect(derived.status).toBe(200);
    expect(derived.body.shared_secret).toBe(diffieHellman({ privateKey: peer.privateKey, publicKey: ours }).toString('base64'));
  });
});
