import { constants, createHash, createPublicKey, verify as verifyLocally, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createKeyId, expectKmsError, kmsClient } from '../helpers/client';
import { runCli } from '../helpers/cli';
import { sdkClient } from '../helpers/sdk-client';
import { testModuleKind } from '../helpers/test-module';
import { useTestService } from '../helpers/service';
import type { KeySpec, KeyUsage } from '../../src/hsm/hsm';

/**
 * Key kinds through the API: create-key's key_spec and key_usage, describe-key and list-keys'
 * filter, the symmetric operations refusing keys of another kind before the HSM. Specs the module
 * cannot make (Ed25519 and secp256k1 on NSS's softoken) are refused clearly instead.
 */

const t = useTestService();
const kms = t.client('project-a');

function dataKeyWithDigest(): string {
  const dek = Buffer.alloc(32, 0x11);
  return Buffer.concat([dek, createHash('sha256').update(dek).digest()]).toString('hex');
}

let aliases = 0;
async function createKey(fields: Record<string, string> = {}): Promise<string> {
  return createKeyId(kms, `kind-${++aliases}`, fields);
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

  it('NSS\'s softoken has neither Ed25519 nor secp256k1: create-key refuses both naming the spec (elsewhere they are made)', async () => {
    for (const spec of ['ED25519', 'SECP256K1'] as const) {
      const response = await kms.call('create-key', { key_alias: `module-${spec}`, key_spec: spec });
      if (testModuleKind() !== 'nss') {
        expect(response.status).toBe(200);
        continue;
      }
      expectKmsError(response, 400, 'KMS.0308');
      expect(response.body.error.error_msg).toContain(`cannot make ${spec} keys`);
    }
  });

  it('RSA_4096 for ENCRYPT_DECRYPT and EC_P256 for KEY_AGREEMENT are made as asked', async () => {
    for (const [spec, usage] of [['RSA_4096', 'ENCRYPT_DECRYPT'], ['EC_P256', 'KEY_AGREEMENT']] as const) {
      if (!supports(spec, usage)) continue;
      const keyId = await createKey({ key_spec: spec, key_usage: usage });
      expect((await kms.call('describe-key', { key_id: keyId })).body.key_info).toMatchObject({ key_spec: spec, key_usage: usage });
    }
  });

  it.each([
    ['SM2', {}],
    ['SM4', {}],
    ['HMAC_SM3', {}],
  ])('%s is refused naming the spec (KMS.0308)', async (spec) => {
    const response = await kms.call('create-key', { key_alias: `refused-${spec}`, key_spec: spec });
    expectKmsError(response, 400, 'KMS.0308');
    expect(response.body.error.error_msg).toContain(spec);
  });

  it('a spec that is none is refused naming those there are, not echoing it (KMS.0308)', async () => {
    const response = await kms.call('create-key', { key_alias: 'refused-rsa-1024', key_spec: 'RSA_1024' });
    expectKmsError(response, 400, 'KMS.0308');
    expect(response.body.error.error_msg).toContain('RSA_2048');
    expect(response.body.error.error_msg).not.toContain('RSA_1024');
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

  it.each(operations)('%s refuses RSA (KMS.0325; rotation KMS.0324, encrypt-data, decrypt-data and a re-encrypt destination KMS.0335), EC (KMS.0325) and HMAC (KMS.0341) keys', async (name, request) => {
    const rotation = name.includes('rotation');
    // encrypt-data, decrypt-data and re-encrypt's destination serve RSA keys made for ENCRYPT_DECRYPT: this one is "used to sign and verify".
    const rsaCode = rotation ? 'KMS.0324' : name.endsWith('-data') || name.startsWith('re-encrypt') ? 'KMS.0335' : 'KMS.0325';
    for (const [keyId, code] of [[rsaKey, rsaCode], [ecKey, 'KMS.0325'], [hmacKey, 'KMS.0341']] as const) {
      const [operation, body] = request(keyId);
      expectKmsError(await kms.call(operation, body), 400, code);
    }
    // The AES key still does it (decrypt-datakey and decrypt-data with their own blobs).
    const [operation, body] = request(aesKey);
    expect((await kms.call(operation, body)).status).toBe(200);
  });
});

describe('sign, verify and get-publickey', () => {
  const HASHES = { SHA_256: 'sha256', SHA_384: 'sha384', SHA_512: 'sha512' } as const;
  const CASES: ReadonlyArray<[KeySpec, string]> = [
    ['RSA_2048', 'RSASSA_PSS_SHA_256'],
    ['RSA_2048', 'RSASSA_PSS_SHA_384'],
    ['RSA_3072', 'RSASSA_PSS_SHA_512'],
    ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_256'],
    ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_384'],
    ['RSA_2048', 'RSASSA_PKCS1_V1_5_SHA_512'],
    ['EC_P256', 'ECDSA_SHA_256'],
    ['EC_P384', 'ECDSA_SHA_384'],
    ['EC_P256', 'ECDSA_SHA_512'],
    ['SECP256K1', 'ECDSA_SHA_256'],
    ['ED25519', 'ED25519_SHA_512'],
  ];
  const keys = new Map<KeySpec, { keyId: string; publicKey: KeyObject }>();

  /** One key per spec, its public key from get-publickey (PEM with CRLF, as Huawei answers it). */
  async function keyOf(spec: KeySpec): Promise<{ keyId: string; publicKey: KeyObject }> {
    let key = keys.get(spec);
    if (!key) {
      const keyId = await createKey({ key_spec: spec });
      const response = await kms.call('get-publickey', { key_id: keyId });
      expect(response.status).toBe(200);
      expect(response.body.key_id).toBe(keyId);
      const pem = response.body.public_key as string;
      expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\r\n([A-Za-z0-9+/=]{1,64}\r\n)+-----END PUBLIC KEY-----\r\n$/);
      key = { keyId, publicKey: createPublicKey(pem) };
      keys.set(spec, key);
    }
    return key;
  }

  function hashOf(algorithm: string): 'sha256' | 'sha384' | 'sha512' | null {
    const suffix = Object.keys(HASHES).find((name) => algorithm.endsWith(name)) as keyof typeof HASHES | undefined;
    return algorithm.startsWith('ED25519') || !suffix ? null : HASHES[suffix];
  }

  /** Node's verdict on `signature` over `message` with the public key get-publickey answered. */
  function verifiedByNode(publicKey: KeyObject, algorithm: string, message: Buffer, signature: Buffer): boolean {
    const hash = hashOf(algorithm);
    if (algorithm.startsWith('RSASSA_PSS')) {
      return verifyLocally(hash, message, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: createHash(hash!).digest().length }, signature);
    }
    return verifyLocally(hash, message, publicKey, signature);
  }

  it.each(CASES)('%s %s: RAW and DIGEST signatures verify with Node\'s crypto and the get-publickey key; verify answers "true", and "false" for a wrong one', async (spec, algorithm) => {
    if (!supports(spec, 'SIGN_VERIFY')) {
      const refused = await kms.call('create-key', { key_alias: `unsupported-${spec}-${algorithm}`, key_spec: spec });
      expectKmsError(refused, 400, 'KMS.0308');
      expect(refused.body.error.error_msg).toContain(spec);
      return;
    }
    const { keyId, publicKey } = await keyOf(spec);
    const message = Buffer.from(`a message to sign with ${spec} ${algorithm}`);
    const hash = hashOf(algorithm);
    const requests: Array<{ message: Buffer; message_type?: string }> = [{ message, message_type: 'RAW' }];
    if (hash) requests.push({ message: createHash(hash).update(message).digest() }, { message: createHash(hash).update(message).digest(), message_type: 'DIGEST' });
    for (const request of requests) {
      const body = { key_id: keyId, signing_algorithm: algorithm, message: request.message.toString('base64'), ...(request.message_type ? { message_type: request.message_type } : {}) };
      const signed = await kms.call('sign', body);
      expect(signed.status).toBe(200);
      expect(signed.body.key_id).toBe(keyId);
      const signature = Buffer.from(signed.body.signature as string, 'base64');
      // The signature is over the message, whether the service or the client hashed it.
      expect(verifiedByNode(publicKey, algorithm, message, signature)).toBe(true);
      expect((await kms.call('verify', { ...body, signature: signature.toString('base64') })).body).toEqual({ key_id: keyId, signature_valid: 'true' });
      const wrong = Buffer.from(signature);
      wrong[wrong.length - 5] ^= 0x01;
      expect((await kms.call('verify', { ...body, signature: wrong.toString('base64') })).body).toEqual({ key_id: keyId, signature_valid: 'false' });
      const otherMessage = { ...body, message: Buffer.from(request.message).fill(0x42, 0, 1).toString('base64') };
      expect((await kms.call('verify', { ...otherMessage, signature: signature.toString('base64') })).body.signature_valid).toBe('false');
    }
  });

  it('an algorithm that does not fit the key is 400 KMS.0332; SM2DSA_SM3 too', async () => {
    const rsa = await keyOf('RSA_2048');
    const ec = await keyOf('EC_P256');
    const digest = createHash('sha256').update('x').digest().toString('base64');
    expectKmsError(await kms.call('sign', { key_id: rsa.keyId, signing_algorithm: 'ECDSA_SHA_256', message: digest }), 400, 'KMS.0332');
    expectKmsError(await kms.call('sign', { key_id: ec.keyId, signing_algorithm: 'RSASSA_PSS_SHA_256', message: digest }), 400, 'KMS.0332');
    expectKmsError(await kms.call('verify', { key_id: ec.keyId, signing_algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', message: digest, signature: 'AAAA' }), 400, 'KMS.0332');
    expectKmsError(await kms.call('sign', { key_id: ec.keyId, signing_algorithm: 'SM2DSA_SM3', message: digest }), 400, 'KMS.0332');
    expectKmsError(await kms.call('sign', { key_id: ec.keyId, signing_algorithm: 'NOT_ONE', message: digest }), 400, 'KMS.0308');
  });

  it('a DIGEST of the wrong length is 400 KMS.0329; a message of 4096 bytes or none is 400 KMS.0308', async () => {
    const { keyId } = await keyOf('EC_P256');
    expectKmsError(await kms.call('sign', { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message: Buffer.alloc(20).toString('base64') }), 400, 'KMS.0329');
    expectKmsError(await kms.call('sign', { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message_type: 'RAW', message: Buffer.alloc(4096).toString('base64') }), 400, 'KMS.0308');
    expect((await kms.call('sign', { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message_type: 'RAW', message: Buffer.alloc(4095).toString('base64') })).status).toBe(200);
    expectKmsError(await kms.call('sign', { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message: '' }), 400, 'KMS.0308');
  });

  it('sign with an AES key is 400 KMS.1115, with an HMAC key KMS.0341, with an RSA key made to decrypt KMS.0334; get-publickey of an AES key KMS.0331', async () => {
    const digest = createHash('sha256').update('x').digest().toString('base64');
    const aes = await createKey();
    expectKmsError(await kms.call('sign', { key_id: aes, signing_algorithm: 'RSASSA_PSS_SHA_256', message: digest }), 400, 'KMS.1115');
    expectKmsError(await kms.call('verify', { key_id: aes, signing_algorithm: 'RSASSA_PSS_SHA_256', message: digest, signature: 'AAAA' }), 400, 'KMS.1115');
    expectKmsError(await kms.call('get-publickey', { key_id: aes }), 400, 'KMS.0331');
    const hmac = await createKey({ key_spec: 'HMAC_256' });
    expectKmsError(await kms.call('sign', { key_id: hmac, signing_algorithm: 'RSASSA_PSS_SHA_256', message: digest }), 400, 'KMS.0341');
    if (supports('RSA_2048', 'ENCRYPT_DECRYPT')) {
      const decrypting = await createKey({ key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
      expectKmsError(await kms.call('sign', { key_id: decrypting, signing_algorithm: 'RSASSA_PSS_SHA_256', message: digest }), 400, 'KMS.0334');
      expect((await kms.call('get-publickey', { key_id: decrypting })).status).toBe(200);
    }
  });

  it('a disabled key signs nothing (KMS.0209); another project\'s key does not exist (KMS.0207)', async () => {
    const keyId = await createKey({ key_spec: 'EC_P256' });
    const digest = createHash('sha256').update('x').digest().toString('base64');
    expectKmsError(await t.client('project-b').call('sign', { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message: digest }), 404, 'KMS.0207');
    expect((await kms.call('disable-key', { key_id: keyId })).status).toBe(200);
    expectKmsError(await kms.call('sign', { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message: digest }), 400, 'KMS.0209');
  });

  it('needs kms:cmk:sign, kms:cmk:verify and kms:cmk:getPublicKey: each alone allows its operation only', async () => {
    const { keyId } = await keyOf('EC_P256');
    const body = { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message: createHash('sha256').update('x').digest().toString('base64') };
    const signer = t.client('project-a', ['kms:cmk:sign']);
    const signed = await signer.call('sign', body);
    expect(signed.status).toBe(200);
    expectKmsError(await signer.call('verify', { ...body, signature: signed.body.signature }), 403, 'KMS.0307');
    expectKmsError(await signer.call('get-publickey', { key_id: keyId }), 403, 'KMS.0307');
    expect((await t.client('project-a', ['kms:cmk:verify']).call('verify', { ...body, signature: signed.body.signature })).body.signature_valid).toBe('true');
    expect((await t.client('project-a', ['kms:cmk:getPublicKey']).call('get-publickey', { key_id: keyId })).status).toBe(200);
    expectKmsError(await t.client('project-a', ['kms:cmk:crypto']).call('sign', body), 403, 'KMS.0307');
  });
});

describe('the audit trail of sign and verify', () => {
  /** The audit record of one request (an operation is answered once its record is in the file). */
  function recordOf(requestId: string | null): string {
    const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter((line) => line.includes(`"request_id":"${requestId}"`));
    expect(lines).toHaveLength(1);
    return lines[0]!;
  }

  it('names the key and the algorithm, never the message or the signature', async () => {
    const keyId = await createKey({ key_spec: 'EC_P256' });
    const message = createHash('sha256').update('a secret message').digest().toString('base64');
    const signed = await kms.call('sign', { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message });
    expect(signed.status).toBe(200);
    const verified = await kms.call('verify', { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message, signature: signed.body.signature });
    expect(verified.body.signature_valid).toBe('true');
    for (const [response, action] of [[signed, 'sign'], [verified, 'verify']] as const) {
      const line = recordOf(response.headers.get('x-request-id'));
      expect(JSON.parse(line)).toMatchObject({ action, permission: `kms:cmk:${action}`, key_id: keyId, algorithm: 'ECDSA_SHA_256', result: 'OK' });
      expect(line).not.toContain(message);
      expect(line).not.toContain(signed.body.signature);
      expect(line).not.toContain(Buffer.from(message, 'base64').toString('hex'));
    }
  });
});

describe('sign, verify and get-publickey through the official SDK\'s signer', () => {
  it('an EC_P256 key made, its public key read and a signature made and checked, each request signed by the SDK core', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-key', { key_alias: 'sdk-signing', key_spec: 'EC_P256', key_usage: 'SIGN_VERIFY' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;
    const publicKey = createPublicKey((await sdk.call('get-publickey', { key_id: keyId })).body.public_key as string);
    const message = Buffer.from('signed through the SDK');
    const body = { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message_type: 'RAW', message: message.toString('base64') };
    const signed = await sdk.call('sign', body);
    expect(signed.status).toBe(200);
    expect(verifyLocally('sha256', message, publicKey, Buffer.from(signed.body.signature as string, 'base64'))).toBe(true);
    expect((await sdk.call('verify', { ...body, signature: signed.body.signature })).body).toEqual({ key_id: keyId, signature_valid: 'true' });
    const refused = await sdk.call('sign', { ...body, signing_algorithm: 'RSASSA_PSS_SHA_256' });
    expect(refused).toMatchObject({ status: 400, errorCode: 'KMS.0332' });
  });
});

describe('grants on sign, verify and get-publickey', () => {
  it('a grantee of another project signs, verifies and reads the public key with a grant naming them, and nothing else', async () => {
    const keyId = await createKey({ key_spec: 'EC_P256' });
    const issued = await t.service.credentials.createToken({ projectId: 'project-grantee', actions: ['kms:grant:list'] });
    const grantee = kmsClient(() => t.service.url, 'project-a', { 'x-auth-token': issued.token });
    const body = { key_id: keyId, signing_algorithm: 'ECDSA_SHA_256', message: createHash('sha256').update('granted').digest().toString('base64') };
    expectKmsError(await grantee.call('sign', body), 403, 'KMS.0307');
    const granted = await kms.call('create-grant', { key_id: keyId, grantee_principal: issued.principal_id, operations: ['sign', 'get-publickey'] });
    expect(granted.status).toBe(200);
    const signed = await grantee.call('sign', body);
    expect(signed.status).toBe(200);
    expect((await grantee.call('get-publickey', { key_id: keyId })).status).toBe(200);
    expectKmsError(await grantee.call('verify', { ...body, signature: signed.body.signature }), 403, 'KMS.0307');
    expect((await kms.call('verify', { ...body, signature: signed.body.signature })).body.signature_valid).toBe('true');
  });
});

describe('the command line', () => {
  it('key create --spec --usage makes that kind; key list shows AES_256 keys unless --spec names another or ALL', async () => {
    const created = await runCli(t, ['key', 'create', '--project', 'project-cli', '--alias', 'cli-ec', '--spec', 'EC_P256', '--usage', 'SIGN_VERIFY']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const client = t.client('project-cli');
    const listed = (await client.call('list-keys', { key_spec: 'ALL' })).body;
    expect(listed.key_details).toEqual([expect.objectContaining({ key_alias: 'cli-ec', key_spec: 'EC_P256', key_usage: 'SIGN_VERIFY' })]);
    expect((await runCli(t, ['key', 'list', '--project', 'project-cli'])).stdout).not.toContain(listed.keys[0]);
    expect((await runCli(t, ['key', 'list', '--project', 'project-cli', '--spec', 'ALL'])).stdout).toContain(listed.keys[0]);
    const refused = await runCli(t, ['key', 'create', '--project', 'project-cli', '--alias', 'cli-sm4', '--spec', 'SM4']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('SM4');
  });
});
