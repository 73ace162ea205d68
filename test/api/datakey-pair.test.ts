import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { withTrailerRecomputed } from '../helpers/blob';
import { createKeyId, expectKmsError, kmsClient, type KmsResponse } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';

/**
 * create-rsa-datakey-pair and create-ec-datakey-pair: a key pair for use outside the service, its
 * private key sealed under an AES_256 CMK. Every pair is checked with Node's crypto: the private
 * key's own public key is the one answered, and a signature made with the private key verifies
 * with the public key. private_key_cipher_text opens through decrypt-data, under the same CMK and
 * additional_authenticated_data only, and never passes for a data blob or a data key blob, nor
 * they for it.
 */

const t = useTestService();
const kms = t.client('project-a');

let aliases = 0;
async function createKey(fields: Record<string, string> = {}): Promise<string> {
  return createKeyId(kms, `pair-${++aliases}`, fields);
}

let cmk: string;
beforeAll(async () => {
  cmk = await createKey();
});

type Operation = 'create-rsa-datakey-pair' | 'create-ec-datakey-pair';
const SPECS: readonly { operation: Operation; spec: string; check: (key: KeyObject) => void }[] = [
  { operation: 'create-rsa-datakey-pair', spec: 'RSA_2048', check: (key) => expect(key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n }) },
  { operation: 'create-rsa-datakey-pair', spec: 'RSA_3072', check: (key) => expect(key.asymmetricKeyDetails?.modulusLength).toBe(3072) },
  { operation: 'create-rsa-datakey-pair', spec: 'RSA_4096', check: (key) => expect(key.asymmetricKeyDetails?.modulusLength).toBe(4096) },
  { operation: 'create-ec-datakey-pair', spec: 'ECC_NIST_P256', check: (key) => expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1') },
  { operation: 'create-ec-datakey-pair', spec: 'ECC_NIST_P384', check: (key) => expect(key.asymmetricKeyDetails?.namedCurve).toBe('secp384r1') },
  { operation: 'create-ec-datakey-pair', spec: 'ECC_NIST_P521', check: (key) => expect(key.asymmetricKeyDetails?.namedCurve).toBe('secp521r1') },
  { operation: 'create-ec-datakey-pair', spec: 'ECC_SECG_P256K1', check: (key) => expect(key.asymmetricKeyDetails?.namedCurve).toBe('secp256k1') },
];

const publicKeyOf = (text: string): KeyObject => createPublicKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'spki' });
const privateKeyOf = (text: string): KeyObject => createPrivateKey({ key: Buffer.from(text, 'base64'), format: 'der', type: 'pkcs8' });

/** The private key belongs to the public key: its own public key is the one answered, and what it signs the public key verifies. */
function expectPair(privateKey: KeyObject, publicKey: KeyObject): void {
  expect(createPublicKey(privateKey).export({ type: 'spki', format: 'der' })).toEqual(publicKey.export({ type: 'spki', format: 'der' }));
  const message = Buffer.from('signed outside the KMS with a data key pair');
  const signature = sign('sha256', message, privateKey);
  expect(verify('sha256', message, publicKey, signature)).toBe(true);
  expect(verify('sha256', Buffer.from('another message'), publicKey, signature)).toBe(false);
}

/** decrypt-data of a private_key_cipher_text: the private key, as private_key_plain_text spells it, in plain_text. */
async function open(cipherText: string, fields: Record<string, string> = {}): Promise<KmsResponse> {
  return kms.call('decrypt-data', { cipher_text: cipherText, ...fields });
}

describe('every key_spec', () => {
  it.each(SPECS)('$spec ($operation): a key pair whose private key matches its public key, sealed under the CMK; decrypt-data opens it back', async ({ operation, spec, check }) => {
    const created = await kms.call(operation, { key_id: cmk, key_spec: spec });
    expect(created.status).toBe(200);
    expect(Object.keys(created.body).sort()).toEqual(['key_id', 'key_spec', 'private_key_cipher_text', 'private_key_plain_text', 'public_key']);
    expect(created.body).toMatchObject({ key_id: cmk, key_spec: spec });
    const publicKey = publicKeyOf(created.body.public_key);
    const privateKey = privateKeyOf(created.body.private_key_plain_text);
    check(publicKey);
    expectPair(privateKey, publicKey);

    const opened = await open(created.body.private_key_cipher_text);
    expect(opened.status).toBe(200);
    expect(opened.body.key_id).toBe(cmk);
    expect(opened.body.plain_text).toBe(created.body.private_key_plain_text);
    // RSA_4096 generation takes seconds of CPU, more on a loaded machine.
  }, 90_000);

  it('with_plain_text false: no private_key_plain_text, and the cipher text opens to the private key of the public key answered', async () => {
    for (const [operation, spec] of [['create-ec-datakey-pair', 'ECC_NIST_P256'], ['create-rsa-datakey-pair', 'RSA_2048']] as const) {
      const created = await kms.call(operation, { key_id: cmk, key_spec: spec, with_plain_text: false });
      expect(created.status).toBe(200);
      expect(created.body).not.toHaveProperty('private_key_plain_text');
      const opened = await open(created.body.private_key_cipher_text);
      expect(opened.status).toBe(200);
      expectPair(privateKeyOf(opened.body.plain_text), publicKeyOf(created.body.public_key));
    }
    // true is the default's answer; and a fresh pair every time.
    const first = await kms.call('create-ec-datakey-pair', { key_id: cmk, key_spec: 'ECC_NIST_P256', with_plain_text: true });
    expect(first.body).toHaveProperty('private_key_plain_text');
    const second = await kms.call('create-ec-datakey-pair', { key_id: cmk, key_spec: 'ECC_NIST_P256' });
    expect(second.body.public_key).not.toBe(first.body.public_key);
    expect(second.body.private_key_plain_text).not.toBe(first.body.private_key_plain_text);
  });
});

describe('specs and keys that are refused', () => {
  it('SM2, a spec of the other operation, an unknown spec and a missing one are refused (KMS.0308, KMS.0204)', async () => {
    const sm2 = await kms.call('create-ec-datakey-pair', { key_id: cmk, key_spec: 'SM2' });
    expectKmsError(sm2, 400, 'KMS.0308');
    expect(sm2.body.error.error_msg).toContain('SM2');
    expectKmsError(await kms.call('create-ec-datakey-pair', { key_id: cmk, key_spec: 'RSA_2048' }), 400, 'KMS.0308');
    expectKmsError(await kms.call('create-rsa-datakey-pair', { key_id: cmk, key_spec: 'ECC_NIST_P256' }), 400, 'KMS.0308');
    const unknown = await kms.call('create-rsa-datakey-pair', { key_id: cmk, key_spec: 'constructor' });
    expectKmsError(unknown, 400, 'KMS.0308');
    expect(unknown.body.error.error_msg).toContain('RSA_2048, RSA_3072, RSA_4096');
    expectKmsError(await kms.call('create-rsa-datakey-pair', { key_id: cmk }), 400, 'KMS.0204');
    expectKmsError(await kms.call('create-ec-datakey-pair', { key_id: cmk, key_spec: 'ECC_NIST_P256', with_plain_text: 'false' }), 400, 'KMS.0308');
  });

  it('the CMK must be AES_256 for ENCRYPT_DECRYPT: key pairs are KMS.0325, HMAC keys KMS.0341, an unknown key KMS.0207', async () => {
    const refusals: readonly [Record<string, string>, string][] = [
      [{ key_spec: 'RSA_2048' }, 'KMS.0325'],
      [{ key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' }, 'KMS.0325'],
      [{ key_spec: 'EC_P256' }, 'KMS.0325'],
      [{ key_spec: 'HMAC_256' }, 'KMS.0341'],
    ];
    for (const [fields, code] of refusals) {
      const keyId = await createKey(fields);
      expectKmsError(await kms.call('create-rsa-datakey-pair', { key_id: keyId, key_spec: 'RSA_2048' }), 400, code);
      expectKmsError(await kms.call('create-ec-datakey-pair', { key_id: keyId, key_spec: 'ECC_NIST_P256' }), 400, code);
    }
    expectKmsError(await kms.call('create-ec-datakey-pair', { key_id: '00000000-0000-0000-0000-000000000000', key_spec: 'ECC_NIST_P256' }), 404, 'KMS.0207');
  });

  it('a disabled CMK seals no pair (KMS.0209)', async () => {
    const keyId = await createKey();
    expect((await kms.call('disable-key', { key_id: keyId })).status).toBe(200);
    expectKmsError(await kms.call('create-ec-datakey-pair', { key_id: keyId, key_spec: 'ECC_NIST_P256' }), 400, 'KMS.0209');
  });
});

describe('private_key_cipher_text opens only as itself', () => {
  let sealed: { cipherText: string; plainText: string };
  beforeAll(async () => {
    const created = await kms.call('create-ec-datakey-pair', { key_id: cmk, key_spec: 'ECC_NIST_P256', additional_authenticated_data: 'pair-context' });
    expect(created.status).toBe(200);
    sealed = { cipherText: created.body.private_key_cipher_text, plainText: created.body.private_key_plain_text };
  });

  it('opens with the same additional_authenticated_data, with or without key_id; another AAD, none, or another CMK is refused (KMS.2201)', async () => {
    for (const fields of [{}, { key_id: cmk }] as Record<string, string>[]) {
      const opened = await open(sealed.cipherText, { ...fields, additional_authenticated_data: 'pair-context' });
      expect(opened.status).toBe(200);
      expect(opened.body.plain_text).toBe(sealed.plainText);
    }
    expectKmsError(await open(sealed.cipherText), 400, 'KMS.2201');
    expectKmsError(await open(sealed.cipherText, { additional_authenticated_data: 'other-context' }), 400, 'KMS.2201');
    const otherCmk = await createKey();
    expectKmsError(await open(sealed.cipherText, { key_id: otherCmk, additional_authenticated_data: 'pair-context' }), 400, 'KMS.2201');
  });

  it('a data blob given the private-key format does not open, nor a private-key blob given the data format (the purpose is bound)', async () => {
    const relabel = (text: string, format: number): string => {
      const bytes = Buffer.from(text, 'base64');
      bytes.writeUInt16LE(format, 0);
      return withTrailerRecomputed(bytes).toString('base64');
    };
    // A data blob of the very text of a private key, with the same binding: only its purpose differs.
    const data = await kms.call('encrypt-data', { key_id: cmk, plain_text: sealed.plainText, additional_authenticated_data: 'pair-context' });
    expect(data.status).toBe(200);
    expect((await open(data.body.cipher_text, { additional_authenticated_data: 'pair-context' })).body.plain_text).toBe(sealed.plainText);
    expectKmsError(await open(relabel(data.body.cipher_text, 0x5001), { additional_authenticated_data: 'pair-context' }), 400, 'KMS.2201');
    expectKmsError(await open(relabel(sealed.cipherText, 0x4401), { additional_authenticated_data: 'pair-context' }), 400, 'KMS.2201');
  });

  it('decrypt-datakey does not take it, and decrypt-data takes no data key blob in its place (KMS.2201)', async () => {
    const hex = Buffer.from(sealed.cipherText, 'base64').toString('hex').toUpperCase();
    const length = String(Buffer.from(sealed.plainText).length);
    expectKmsError(await kms.call('decrypt-datakey', { key_id: cmk, cipher_text: hex, datakey_cipher_length: '32', additional_authenticated_data: 'pair-context' }), 400, 'KMS.2201');
    expectKmsError(await kms.call('decrypt-datakey', { key_id: cmk, cipher_text: hex, datakey_cipher_length: length, additional_authenticated_data: 'pair-context' }), 400, 'KMS.2201');
    const dataKey = await kms.call('create-datakey', { key_id: cmk, additional_authenticated_data: 'pair-context' });
    expect(dataKey.status).toBe(200);
    const asBase64 = Buffer.from(dataKey.body.cipher_text, 'hex').toString('base64');
    expectKmsError(await open(asBase64, { additional_authenticated_data: 'pair-context' }), 400, 'KMS.2201');
  });

  it('re-encrypt moves it to another CMK as a private-key blob, which opens there to the same private key', async () => {
    const destination = await createKey();
    const moved = await kms.call('re-encrypt', {
      cipher_text: sealed.cipherText,
      source_additional_authenticated_data: 'pair-context',
      destination_key_id: destination,
      destination_additional_authenticated_data: 'moved',
    });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ key_id: destination, source_key_id: cmk });
    expect((moved.body.cipher_text as string).startsWith('AV')).toBe(true);
    const opened = await open(moved.body.cipher_text, { additional_authenticated_data: 'moved' });
    expect(opened.status).toBe(200);
    expect(opened.body).toMatchObject({ key_id: destination, plain_text: sealed.plainText });
  });
});

describe('access and audit', () => {
  it('needs kms:dek:createDatakeyPair: kms:dek:create (data keys) is not enough', async () => {
    const body = { key_id: cmk, key_spec: 'ECC_NIST_P256' };
    expect((await t.client('project-a', ['kms:dek:createDatakeyPair']).call('create-ec-datakey-pair', body)).status).toBe(200);
    expect((await t.client('project-a', ['kms:dek:*']).call('create-rsa-datakey-pair', { key_id: cmk, key_spec: 'RSA_2048' })).status).toBe(200);
    expectKmsError(await t.client('project-a', ['kms:dek:create', 'kms:cmk:crypto']).call('create-ec-datakey-pair', body), 403, 'KMS.0307');
  });

  it('a grantee of another project makes pairs with a grant naming create-ec-datakey-pair, and not RSA pairs without create-rsa-datakey-pair', async () => {
    const keyId = await createKey();
    const issued = await t.service.credentials.createToken({ projectId: 'project-grantee', actions: ['kms:grant:list'] });
    const grantee = kmsClient(() => t.service.url, 'project-a', { 'x-auth-token': issued.token });
    const body = { key_id: keyId, key_spec: 'ECC_NIST_P384' };
    expectKmsError(await grantee.call('create-ec-datakey-pair', body), 403, 'KMS.0307');
    expect((await kms.call('create-grant', { key_id: keyId, grantee_principal: issued.principal_id, operations: ['create-ec-datakey-pair'] })).status).toBe(200);
    expect((await grantee.call('create-ec-datakey-pair', body)).status).toBe(200);
    expectKmsError(await grantee.call('create-rsa-datakey-pair', { key_id: keyId, key_spec: 'RSA_2048' }), 403, 'KMS.0307');
  });

  it('the audit record names the CMK and the key_spec, never a key of the pair or its cipher text', async () => {
    const created = await kms.call('create-ec-datakey-pair', { key_id: cmk, key_spec: 'ECC_SECG_P256K1' });
    expect(created.status).toBe(200);
    const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter((line) => line.includes(`"request_id":"${created.headers.get('x-request-id')}"`));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ action: 'create-ec-datakey-pair', permission: 'kms:dek:createDatakeyPair', key_id: cmk, key_spec: 'ECC_SECG_P256K1', result: 'OK' });
    for (const field of ['private_key_plain_text', 'private_key_cipher_text', 'public_key'] as const) {
      expect(lines[0]).not.toContain((created.body[field] as string).slice(0, 40));
    }
  });

  it('decrypt-data and re-encrypt of a private-key blob say so in their records ("blob":"private-key"), once it opened; a data blob\'s and a refused one\'s do not', async () => {
    const recordOf = (response: { headers: Headers }): Record<string, unknown> => {
      const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter((line) => line.includes(`"request_id":"${response.headers.get('x-request-id')}"`));
      expect(lines).toHaveLength(1);
      return JSON.parse(lines[0]!) as Record<string, unknown>;
    };
    const created = await kms.call('create-ec-datakey-pair', { key_id: cmk, key_spec: 'ECC_NIST_P256' });
    const opened = await open(created.body.private_key_cipher_text);
    expect(opened.status).toBe(200);
    expect(recordOf(opened)).toMatchObject({ action: 'decrypt-data', key_id: cmk, blob: 'private-key', result: 'OK' });
    expect(JSON.stringify(recordOf(opened))).not.toContain(created.body.private_key_plain_text.slice(0, 40));
    const moved = await kms.call('re-encrypt', { cipher_text: created.body.private_key_cipher_text, destination_key_id: cmk });
    expect(recordOf(moved)).toMatchObject({ action: 're-encrypt', blob: 'private-key', result: 'OK' });
    const refused = await open(created.body.private_key_cipher_text, { additional_authenticated_data: 'not-its-aad' });
    expectKmsError(refused, 400, 'KMS.2201');
    expect(recordOf(refused)).not.toHaveProperty('blob');
    const data = await kms.call('encrypt-data', { key_id: cmk, plain_text: 'not a private key' });
    const dataOpened = await open(data.body.cipher_text);
    expect(dataOpened.status).toBe(200);
    expect(recordOf(dataOpened)).not.toHaveProperty('blob');
  });
});

describe('through the official SDK\'s signer', () => {
  it('create-rsa-datakey-pair and create-ec-datakey-pair (with_plain_text a JSON boolean), and decrypt-data opening the cipher text', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-key', { key_alias: 'sdk-pair-cmk' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;
    const rsa = await sdk.call('create-rsa-datakey-pair', { key_id: keyId, key_spec: 'RSA_2048', additional_authenticated_data: 'sdk' });
    expect(rsa.status).toBe(200);
    expectPair(privateKeyOf(rsa.body.private_key_plain_text), publicKeyOf(rsa.body.public_key));
    const ec = await sdk.call('create-ec-datakey-pair', { key_id: keyId, key_spec: 'ECC_NIST_P256', with_plain_text: false });
    expect(ec.status).toBe(200);
    expect(ec.body.private_key_plain_text).toBeUndefined();
    const opened = await sdk.call('decrypt-data', { cipher_text: ec.body.private_key_cipher_text });
    expect(opened.status).toBe(200);
    expectPair(privateKeyOf(opened.body.plain_text), publicKeyOf(ec.body.public_key));
    expect((await sdk.call('decrypt-data', { cipher_text: rsa.body.private_key_cipher_text, additional_authenticated_data: 'sdk' })).body.plain_text).toBe(rsa.body.private_key_plain_text);
    expect(await sdk.call('create-ec-datakey-pair', { key_id: keyId, key_spec: 'SM2' })).toMatchObject({ status: 400, errorCode: 'KMS.0308' });
  });
});
