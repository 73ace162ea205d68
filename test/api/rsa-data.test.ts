import { constants, createPublicKey, publicEncrypt, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createKeyId, expectKmsError } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';
import { testModuleKind } from '../helpers/test-module';
import type { RequestContext } from '../../src/kms/context';
import { RsaDataCipher } from '../../src/kms/rsa-data';

/**
 * encrypt-data and decrypt-data with RSA keys made for ENCRYPT_DECRYPT: RSA-OAEP, the ciphertext
 * the raw modulus-size block in base64, made with the public key (anyone's Node can make one) and
 * opened in the token. SoftHSM 2.6 (also under the FIPS-style shim) has OAEP with SHA-1 only: there
 * RSAES_OAEP_SHA_256 is refused naming it; NSS's softoken does both.
 */

const t = useTestService();
const kms = t.client('project-a');

type Oaep = 'RSAES_OAEP_SHA_256' | 'RSAES_OAEP_SHA_1';
const HASH: Readonly<Record<Oaep, string>> = { RSAES_OAEP_SHA_256: 'sha256', RSAES_OAEP_SHA_1: 'sha1' };
const ALGORITHMS: readonly Oaep[] = ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'];

/** Whether the test's module decrypts with `algorithm` (SoftHSM 2.6 answers CKR_ARGUMENTS_BAD to OAEP with SHA-256). */
function moduleCan(algorithm: Oaep): boolean {
  return algorithm === 'RSAES_OAEP_SHA_1' || testModuleKind() === 'nss';
}

let aliases = 0;
async function createKey(fields: Record<string, string>): Promise<string> {
  return createKeyId(kms, `rsa-data-${++aliases}`, fields);
}

async function publicKeyOf(keyId: string): Promise<KeyObject> {
  const response = await kms.call('get-publickey', { key_id: keyId });
  expect(response.status).toBe(200);
  return createPublicKey(response.body.public_key as string);
}

function encryptLocally(publicKey: KeyObject, algorithm: Oaep, plaintext: Buffer): string {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: HASH[algorithm] }, plaintext).toString('base64');
}

let rsaKey: string;
let rsaPublic: KeyObject;
let aesKey: string;

beforeAll(async () => {
  rsaKey = await createKey({ key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
  rsaPublic = await publicKeyOf(rsaKey);
  aesKey = await createKey({});
});

describe('RSA-OAEP through encrypt-data and decrypt-data', () => {
  it.each(ALGORITHMS)('%s: a ciphertext Node made with the key from get-publickey decrypts through the API (refused naming the algorithm where the module lacks it)', async (algorithm) => {
    const plaintext = Buffer.from('a small secret for RSA');
    const response = await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: algorithm, cipher_text: encryptLocally(rsaPublic, algorithm, plaintext) });
    if (!moduleCan(algorithm)) {
      expectKmsError(response, 400, 'KMS.2106');
      expect(response.body.error.error_msg).toContain(algorithm);
      return;
    }
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ key_id: rsaKey, plain_text: plaintext.toString('utf8'), plain_text_base64: plaintext.toString('base64') });
  });

  it.each(ALGORITHMS)('%s: encrypt-data answers one modulus-size block in base64 that decrypt-data opens (refused naming the algorithm where the module lacks it)', async (algorithm) => {
    const encrypted = await kms.call('encrypt-data', { key_id: rsaKey, encryption_algorithm: algorithm, plain_text: 'héllo, RSA' });
    if (!moduleCan(algorithm)) {
      // A ciphertext this service could never open is not made.
      expectKmsError(encrypted, 400, 'KMS.2106');
      expect(encrypted.body.error.error_msg).toContain(algorithm);
      return;
    }
    expect(encrypted.status).toBe(200);
    expect(encrypted.body.key_id).toBe(rsaKey);
    const cipherText = encrypted.body.cipher_text as string;
    expect(Buffer.from(cipherText, 'base64')).toHaveLength(256);
    const decrypted = await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: algorithm, cipher_text: cipherText });
    expect(decrypted.status).toBe(200);
    expect(decrypted.body.plain_text).toBe('héllo, RSA');
    // OAEP is randomised: the same plaintext encrypts differently each time.
    const again = await kms.call('encrypt-data', { key_id: rsaKey, encryption_algorithm: algorithm, plain_text: 'héllo, RSA' });
    expect(again.body.cipher_text).not.toBe(cipherText);
  });

  it.each([
    ['RSAES_OAEP_SHA_256', 190],
    ['RSAES_OAEP_SHA_1', 214],
  ] as const)('%s on RSA_2048: up to %i bytes of plaintext, one more is KMS.2108', async (algorithm, limit) => {
    if (!moduleCan(algorithm)) return;
    const fits = await kms.call('encrypt-data', { key_id: rsaKey, encryption_algorithm: algorithm, plain_text: 'a'.repeat(limit) });
    expect(fits.status).toBe(200);
    expect((await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: algorithm, cipher_text: fits.body.cipher_text })).body.plain_text).toBe('a'.repeat(limit));
    const over = await kms.call('encrypt-data', { key_id: rsaKey, encryption_algorithm: algorithm, plain_text: 'a'.repeat(limit + 1) });
    expectKmsError(over, 400, 'KMS.2108');
    expect(over.body.error.error_msg).toContain(`${limit} bytes`);
  });

  it('a ciphertext under another key, of the wrong size, or not base64 of a block is refused (KMS.0311, KMS.2201)', async () => {
    const other = await createKey({ key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
    const underOther = encryptLocally(await publicKeyOf(other), 'RSAES_OAEP_SHA_1', Buffer.from('x'));
    expectKmsError(await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: underOther }), 400, 'KMS.0311');
    const short = Buffer.alloc(128, 1).toString('base64');
    expectKmsError(await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: short }), 400, 'KMS.2201');
    // The key is fine for another ciphertext afterwards.
    const good = encryptLocally(rsaPublic, 'RSAES_OAEP_SHA_1', Buffer.from('still fine'));
    expect((await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: good })).body.plain_text).toBe('still fine');
  });

  it('a block whose number is not below the modulus (all 0xff bytes) is the caller\'s bad ciphertext, KMS.0311, on every module (NSS answers CKR_ARGUMENTS_BAD)', async () => {
    const block = Buffer.alloc(256, 0xff).toString('base64');
    expectKmsError(await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: block }), 400, 'KMS.0311');
    const good = encryptLocally(rsaPublic, 'RSAES_OAEP_SHA_1', Buffer.from('still fine'));
    expect((await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: good })).body.plain_text).toBe('still fine');
  });

  it('an encryption_context or additional_authenticated_data is refused, not ignored: an OAEP ciphertext is bound to nothing (KMS.0308)', async () => {
    const cipherText = encryptLocally(rsaPublic, 'RSAES_OAEP_SHA_1', Buffer.from('x'));
    for (const binding of [{ encryption_context: { purpose: 'test' } }, { additional_authenticated_data: 'aad' }]) {
      const encrypted = await kms.call('encrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', plain_text: 'x', ...binding });
      expectKmsError(encrypted, 400, 'KMS.0308');
      expect(encrypted.body.error.error_msg).toContain('bound to nothing');
      expectKmsError(await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: cipherText, ...binding }), 400, 'KMS.0308');
    }
  });

  it('decrypt-data of an RSA ciphertext needs key_id (KMS.0308)', async () => {
    const cipherText = encryptLocally(rsaPublic, 'RSAES_OAEP_SHA_1', Buffer.from('x'));
    const response = await kms.call('decrypt-data', { encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: cipherText });
    expectKmsError(response, 400, 'KMS.0308');
    expect(response.body.error.error_msg).toContain('key_id');
  });

  it('an RSA_3072 key: a 384-byte block, opened by the token', async () => {
    const keyId = await createKey({ key_spec: 'RSA_3072', key_usage: 'ENCRYPT_DECRYPT' });
    const encrypted = await kms.call('encrypt-data', { key_id: keyId, encryption_algorithm: 'RSAES_OAEP_SHA_1', plain_text: 'three thousand' });
    expect(encrypted.status).toBe(200);
    expect(Buffer.from(encrypted.body.cipher_text as string, 'base64')).toHaveLength(384);
    expect((await kms.call('decrypt-data', { key_id: keyId, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: encrypted.body.cipher_text })).body.plain_text).toBe('three thousand');
  });
});

describe('the public key RSA-OAEP encrypts with', () => {
  const ctx = (): RequestContext => ({
    projectId: 'project-a',
    requestId: 'test',
    principal: { kind: 'operator', id: 'test', projectId: 'project-a', actions: ['kms:*'] },
    actedOn: { keyId: null },
    access: { by: 'permission' },
  });

  it('is read from the token once per key record (the key cache\'s), and again for a new record of the key', async () => {
    const cipher = new RsaDataCipher(t.service.hsm);
    const read = jest.spyOn(t.service.hsm.keyPairs, 'publicKey');
    try {
      const record = await t.service.store.keys.get('project-a', rsaKey);
      if (record === undefined) throw new Error('the key has no record');
      const ciphertexts = await Promise.all(['one', 'two', 'three'].map((text) => cipher.encrypt(ctx(), record, 'RSAES_OAEP_SHA_1', Buffer.from(text))));
      expect(await cipher.encrypt(ctx(), record, 'RSAES_OAEP_SHA_1', Buffer.from('four'))).toHaveLength(256);
      expect(read).toHaveBeenCalledTimes(1);
      // Each was made with the key's own public key: the token decrypts it.
      const opened = await Promise.all(ciphertexts.map(async (ciphertext) => (await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: ciphertext.toString('base64') })).body.plain_text));
      expect(opened).toEqual(['one', 'two', 'three']);
      // A record read again (what the key cache does when the key changes or its entry ages) reads the token again.
      const reread = await t.service.store.keys.get('project-a', rsaKey);
      if (reread === undefined) throw new Error('the key has no record');
      await cipher.encrypt(ctx(), reread, 'RSAES_OAEP_SHA_1', Buffer.from('five'));
      expect(read).toHaveBeenCalledTimes(2);
    } finally {
      read.mockRestore();
    }
  });
});

describe('keys and algorithms that do not go together', () => {
  it.each([undefined, 'SYMMETRIC_DEFAULT', 'SM2_ENCRYPT'])('an RSA key with encryption_algorithm %s is KMS.2106, for encrypt-data and decrypt-data', async (algorithm) => {
    const fields = algorithm === undefined ? {} : { encryption_algorithm: algorithm };
    expectKmsError(await kms.call('encrypt-data', { key_id: rsaKey, plain_text: 'x', ...fields }), 400, 'KMS.2106');
    const cipherText = encryptLocally(rsaPublic, 'RSAES_OAEP_SHA_1', Buffer.from('x'));
    expectKmsError(await kms.call('decrypt-data', { key_id: rsaKey, cipher_text: cipherText, ...fields }), 400, 'KMS.2106');
  });

  it.each(ALGORITHMS)('an AES key with %s is KMS.2105, for encrypt-data and decrypt-data', async (algorithm) => {
    expectKmsError(await kms.call('encrypt-data', { key_id: aesKey, plain_text: 'x', encryption_algorithm: algorithm }), 400, 'KMS.2105');
    const blob = (await kms.call('encrypt-data', { key_id: aesKey, plain_text: 'x' })).body.cipher_text as string;
    expectKmsError(await kms.call('decrypt-data', { key_id: aesKey, cipher_text: blob, encryption_algorithm: algorithm }), 400, 'KMS.2105');
    // The AES key's own blob still opens, with or without key_id.
    expect((await kms.call('decrypt-data', { key_id: aesKey, cipher_text: blob })).body.plain_text).toBe('x');
    expect((await kms.call('decrypt-data', { cipher_text: blob })).body.plain_text).toBe('x');
  });

  it('an RSA key made to sign neither encrypts nor decrypts: KMS.0335, "the cmk is used to sign and verify"', async () => {
    const signingKey = await createKey({ key_spec: 'RSA_2048' });
    const cipherText = encryptLocally(rsaPublic, 'RSAES_OAEP_SHA_1', Buffer.from('x'));
    for (const algorithm of ['RSAES_OAEP_SHA_1', 'SYMMETRIC_DEFAULT', undefined]) {
      const named = algorithm === undefined ? {} : { encryption_algorithm: algorithm };
      expectKmsError(await kms.call('encrypt-data', { key_id: signingKey, plain_text: 'x', ...named }), 400, 'KMS.0335');
      expectKmsError(await kms.call('decrypt-data', { key_id: signingKey, cipher_text: cipherText, ...named }), 400, 'KMS.0335');
    }
    // Nothing else an RSA key cannot do changes: data keys are still "try a symmetric key".
    expectKmsError(await kms.call('create-datakey', { key_id: signingKey }), 400, 'KMS.0325');
  });

  it('an RSA encryption key does not sign or make data keys, and re-encrypt to it needs an OAEP destination_encryption_algorithm', async () => {
    const digest = Buffer.alloc(32, 7).toString('base64');
    expectKmsError(await kms.call('sign', { key_id: rsaKey, signing_algorithm: 'RSASSA_PSS_SHA_256', message: digest }), 400, 'KMS.0334');
    expectKmsError(await kms.call('create-datakey', { key_id: rsaKey }), 400, 'KMS.0325');
    const blob = (await kms.call('encrypt-data', { key_id: aesKey, plain_text: 'x' })).body.cipher_text as string;
    expectKmsError(await kms.call('re-encrypt', { destination_key_id: rsaKey, cipher_text: blob }), 400, 'KMS.2106');
  });
});

describe('access and audit', () => {
  it('needs kms:cmk:crypto, as the symmetric encrypt-data does', async () => {
    const body = { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', plain_text: 'x' };
    expect((await t.client('project-a', ['kms:cmk:crypto']).call('encrypt-data', body)).status).toBe(200);
    expectKmsError(await t.client('project-a', ['kms:cmk:getPublicKey']).call('encrypt-data', body), 403, 'KMS.0307');
  });

  it('the audit record names the key and the algorithm, never the plaintext or the ciphertext', async () => {
    const secret = 'audit-must-not-see-this';
    const encrypted = await kms.call('encrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', plain_text: secret });
    expect(encrypted.status).toBe(200);
    const decrypted = await kms.call('decrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: encrypted.body.cipher_text });
    expect(decrypted.body.plain_text).toBe(secret);
    for (const [response, action] of [[encrypted, 'encrypt-data'], [decrypted, 'decrypt-data']] as const) {
      const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter((line) => line.includes(`"request_id":"${response.headers.get('x-request-id')}"`));
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({ action, key_id: rsaKey, algorithm: 'RSAES_OAEP_SHA_1', result: 'OK' });
      expect(lines[0]).not.toContain(secret);
      expect(lines[0]).not.toContain(Buffer.from(secret).toString('base64'));
      expect(lines[0]).not.toContain(encrypted.body.cipher_text);
    }
  });
});


describe('through the official SDK\'s signer', () => {
  it('an RSA ENCRYPT_DECRYPT key: encrypt-data and decrypt-data with RSAES_OAEP_SHA_1, and SYMMETRIC_DEFAULT refused with KMS.2106', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-key', { key_alias: 'sdk-rsa-data', key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;
    const encrypted = await sdk.call('encrypt-data', { key_id: keyId, encryption_algorithm: 'RSAES_OAEP_SHA_1', plain_text: 'through the SDK' });
    expect(encrypted.status).toBe(200);
    const decrypted = await sdk.call('decrypt-data', { key_id: keyId, encryption_algorithm: 'RSAES_OAEP_SHA_1', cipher_text: encrypted.body.cipher_text });
    expect(decrypted.body).toMatchObject({ key_id: keyId, plain_text: 'through the SDK' });
    expect(await sdk.call('encrypt-data', { key_id: keyId, plain_text: 'x' })).toMatchObject({ status: 400, errorCode: 'KMS.2106' });
  });
});
