import { createHash } from 'node:crypto';
import { expectKmsError, type KmsClient } from '../helpers/client';
import { startTestService, type TestService } from '../helpers/service';
import type { KeySpec, KeyUsage } from '../../src/hsm/hsm';

/**
 * Key kinds through the API: create-key's key_spec and key_usage, describe-key and list-keys'
 * filter, the symmetric operations refusing keys of another kind before the HSM. Specs the module
 * cannot make (Ed25519 and secp256k1 on NSS's softoken) are refused clearly instead.
 */

let t: TestService;
let kms: KmsClient;

beforeAll(async () => {
  t = await startTestService();
  kms = t.client('project-a');
});

afterAll(async () => {
  await t.stop();
});

function dataKeyWithDigest(): string {
  const dek = Buffer.alloc(32, 0x11);
  return Buffer.concat([dek, createHash('sha256').update(dek).digest()]).toString('hex');
}

let aliases = 0;
async function createKey(fields: Record<string, string> = {}): Promise<string> {
  const created = await kms.call('create-key', { key_alias: `kind-${++aliases}`, ...fields });
  expect(created.status).toBe(200);
  return created.body.key_info.key_id as string;
}

function supports(spec: KeySpec, usage: KeyUsage): boolean {
  return t.service.hsm.supports(spec, usage);
}

const DEFAULTS: ReadonlyArray<[KeySpec, KeyUsage]> = [
  ['AES_256', 'ENCRYPT_DECRYPT'],
  ['RSA_2048', 'SIGN_VERIFY'],
  ['RSA_3072', 'SIGN_VERIFY'],
  ['EC_P256', 'SIGN_VERIFY'],
  ['EC_P384', 'SIGN_VERIFY'],
  ['SECP256K1', 'SIGN_VERIFY'],
  ['ED25519', 'SIGN_VERIFY'],
  ['HMAC_256', 'GENERATE_VERIFY_MAC'],
  ['HMAC_384', 'GENERATE_VERIFY_MAC'],
  ['HMAC_512', 'GENERATE_VERIFY_MAC'],
];

describe('create-key key_spec and key_usage', () => {
  it.each(DEFAULTS)('%s is made with its default usage %s, and describe-key shows both (or the module\'s refusal names the spec)', async (spec, usage) => {
    const response = await kms.call('create-key', { key_alias: `default-${spec}`, key_spec: spec });
    if (!supports(spec, usage)) {
      expectKmsError(response, 400, 'KMS.0308');
      expect(response.body.error.error_msg).toContain(spec);
      return;
    }
    expect(response.status).toBe(200);
    const described = await kms.call('describe-key', { key_id: response.body.key_info.key_id });
    expect(described.status).toBe(200);
    expect(described.body.key_info).toMatchObject({ key_spec: spec, key_usage: usage });
  });

  it('RSA_4096 for ENCRYPT_DECRYPT and EC_P256 for KEY_AGREEMENT are made as asked', async () => {
    for (const [spec, usage] of [['RSA_4096', 'SIGN_VERIFY'], ['EC_P256', 'KEY_AGREEMENT']] as const) {
      if (!supports(spec, usage)) continue;
      const keyId = await createKey({ key_spec: spec, key_usage: usage });
      expect((await kms.call('describe-key', { key_id: keyId })).body.key_info).toMatchObject({ key_spec: spec, key_usage: usage });
    }
  });

  it.each([
    ['SM2', {}],
    ['SM4', {}],
    ['HMAC_SM3', {}],
    ['RSA_1024', {}],
  ])('%s is refused naming the spec (KMS.0308)', async (spec) => {
    const response = await kms.call('create-key', { key_alias: `refused-${spec}`, key_spec: spec });
    expectKmsError(response, 400, 'KMS.0308');
    expect(response.body.error.error_msg).toContain(spec);
  });

  it.each([
    ['AES_256', 'SIGN_VERIFY', 'KMS.1115'],
    ['EC_P256', 'ENCRYPT_DECRYPT', 'KMS.1114'],
    ['ED25519', 'KEY_AGREEMENT', 'KMS.0308'],
    ['HMAC_256', 'ENCRYPT_DECRYPT', 'KMS.0308'],
    ['RSA_2048', 'GENERATE_VERIFY_MAC', 'KMS.0308'],
    ['AES_256', 'NOT_A_USAGE', 'KMS.0308'],
  ])('%s for %s makes no sense: 400 %s, and no key is made', async (spec, usage, code) => {
    const before = (await kms.call('list-keys', { key_spec: 'ALL' })).body.total as number;
    expectKmsError(await kms.call('create-key', { key_alias: `nonsense-${spec}-${usage}`, key_spec: spec, key_usage: usage }), 400, code);
    expect((await kms.call('list-keys', { key_spec: 'ALL' })).body.total).toBe(before);
  });
});

describe('list-keys key_spec filter', () => {
  it('lists only AES_256 keys without it, every kind with ALL, one kind when named', async () => {
    const other = t.client('project-list');
    const create = async (alias: string, spec: string): Promise<string> => {
      const response = await other.call('create-key', { key_alias: alias, key_spec: spec });
      expect(response.status).toBe(200);
      return response.body.key_info.key_id as string;
    };
    const aes = await create('list-aes', 'AES_256');
    const rsa = await create('list-rsa', 'RSA_2048');
    const ec = await create('list-ec', 'EC_P256');
    const hmac = await create('list-hmac', 'HMAC_256');
    expect((await other.call('list-keys', {})).body).toMatchObject({ keys: [aes], total: 1 });
    expect((await other.call('list-keys', { key_spec: 'AES_256' })).body).toMatchObject({ keys: [aes], total: 1 });
    expect((await other.call('list-keys', { key_spec: 'ALL' })).body).toMatchObject({ keys: [aes, rsa, ec, hmac], total: 4 });
    expect((await other.call('list-keys', { key_spec: 'RSA_2048' })).body).toMatchObject({ keys: [rsa], total: 1 });
    expect((await other.call('list-keys', { key_spec: 'EC_P256' })).body.key_details[0]).toMatchObject({ key_id: ec, key_spec: 'EC_P256', key_usage: 'SIGN_VERIFY' });
    expect((await other.call('list-keys', { key_spec: 'RSA_4096' })).body).toMatchObject({ keys: [], total: 0 });
  });
});

describe('symmetric operations refuse other kinds before the HSM', () => {
  let aesKey: string;
  let rsaKey: string;
  let ecKey: string;
  let hmacKey: string;
  let dataBlob: string;
  let dataKeyBlob: string;

  beforeAll(async () => {
    aesKey = await createKey();
    rsaKey = await createKey({ key_spec: 'RSA_2048' });
    ecKey = await createKey({ key_spec: 'EC_P256' });
    hmacKey = await createKey({ key_spec: 'HMAC_256' });
    dataBlob = (await kms.call('encrypt-data', { key_id: aesKey, plain_text: 'hello' })).body.cipher_text as string;
    dataKeyBlob = (await kms.call('create-datakey', { key_id: aesKey })).body.cipher_text as string;
  });

  const operations: ReadonlyArray<[string, (keyId: string) => [string, Record<string, unknown>]]> = [
    ['create-datakey', (keyId) => ['create-datakey', { key_id: keyId }]],
    ['create-datakey-without-plaintext', (keyId) => ['create-datakey-without-plaintext', { key_id: keyId }]],
    ['encrypt-datakey', (keyId) => ['encrypt-datakey', { key_id: keyId, plain_text: dataKeyWithDigest(), datakey_plain_length: '32' }]],
    ['decrypt-datakey', (keyId) => ['decrypt-datakey', { key_id: keyId, cipher_text: dataKeyBlob, datakey_cipher_length: '32' }]],
    ['encrypt-data', (keyId) => ['encrypt-data', { key_id: keyId, plain_text: 'hello', encryption_algorithm: 'SYMMETRIC_DEFAULT' }]],
    ['decrypt-data', (keyId) => ['decrypt-data', { key_id: keyId, cipher_text: dataBlob, encryption_algorithm: 'SYMMETRIC_DEFAULT' }]],
    ['re-encrypt (destination)', (keyId) => ['re-encrypt', { destination_key_id: keyId, cipher_text: dataBlob }]],
    ['enable-key-rotation', (keyId) => ['enable-key-rotation', { key_id: keyId }]],
    ['rotate-on-demand', (keyId) => ['rotate-on-demand', { key_id: keyId }]],
    ['get-key-rotation-status', (keyId) => ['get-key-rotation-status', { key_id: keyId }]],
  ];

  it.each(operations)('%s refuses RSA (KMS.0325, rotation KMS.0324), EC (KMS.0325) and HMAC (KMS.0341) keys', async (name, request) => {
    const rotation = name.includes('rotation');
    for (const [keyId, code] of [[rsaKey, rotation ? 'KMS.0324' : 'KMS.0325'], [ecKey, 'KMS.0325'], [hmacKey, 'KMS.0341']] as const) {
      const [operation, body] = request(keyId);
      expectKmsError(await kms.call(operation, body), 400, code);
    }
    // The AES key still does it (decrypt-datakey and decrypt-data with their own blobs).
    const [operation, body] = request(aesKey);
    expect((await kms.call(operation, body)).status).toBe(200);
  });
});
