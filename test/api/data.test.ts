import { readFileSync } from 'node:fs';
import { withTrailerRecomputed } from '../helpers/blob';
import { createKeyId, expectKmsError, kmsClient } from '../helpers/client';
import { addMaterialVersion, blobMaterialVersion } from '../helpers/material-version';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';
import { BLOB_FORMAT_V1 } from '../../src/kms/blob-codec';
import { DATA_BLOB_FORMAT_V1 } from '../../src/kms/data-blob-codec';

/**
 * encrypt-data and decrypt-data: up to 4096 bytes sealed under a CMK, the key named by the blob,
 * bound like data keys, and never mistaken for a data key blob (or the reverse).
 */

/** Huawei KMS's own blobs begin with format version 2 (bytes 02 00; see the API notes' blob layout). */
const HUAWEI_FORMAT = 0x0002;

let keyId: string;

/** A blob's bytes with another format version, and its trailer recomputed as anyone can. */
function reframed(bytes: Buffer, format: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt16LE(format, 0);
  return withTrailerRecomputed(copy);
}

const t = useTestService();
const kms = t.client('project-a');

beforeAll(async () => {
  keyId = await createKeyId(kms, 'small-data');
});

describe('encrypt-data → decrypt-data', () => {
  it('seals text and opens it again without a key_id: the blob names its key', async () => {
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'card 4111-1111' });
    expect(sealed.status).toBe(200);
    expect(Object.keys(sealed.body).sort()).toEqual(['cipher_text', 'key_id']);
    expect(sealed.body.key_id).toBe(keyId);
    const bytes = Buffer.from(sealed.body.cipher_text, 'base64');
    expect(bytes.toString('base64')).toBe(sealed.body.cipher_text);
    // The data blob's frame: format 0x4401, the key id in ASCII before the material version.
    expect(bytes.readUInt16LE(0)).toBe(DATA_BLOB_FORMAT_V1);
    expect(sealed.body.cipher_text.startsWith('AU')).toBe(true);
    const keyIdEnd = bytes.readUInt16LE(2);
    expect(bytes.toString('ascii', keyIdEnd - 36, keyIdEnd)).toBe(keyId);
    expect(bytes.length).toBe(104 + Buffer.byteLength('card 4111-1111'));

    const opened = await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text });
    expect(opened.status).toBe(200);
    expect(opened.body).toEqual({
      key_id: keyId,
      plain_text: 'card 4111-1111',
      plain_text_base64: Buffer.from('card 4111-1111').toString('base64'),
    });
  });

  it('takes key_id when it is the key the blob names, and SYMMETRIC_DEFAULT spelled out', async () => {
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'x', encryption_algorithm: 'SYMMETRIC_DEFAULT' });
    const opened = await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text, key_id: keyId, encryption_algorithm: 'SYMMETRIC_DEFAULT' });
    expect(opened.body.plain_text).toBe('x');
  });

  it.each([
    ['one byte', 'a'],
    ['4096 bytes', 'z'.repeat(4096)],
    ['multi-byte UTF-8 up to 4096 bytes', 'é'.repeat(2048)],
    ['an emoji pair', 'key \uD83D\uDD11'],
    ['control characters and newlines', 'line 1\nline 2\t\u0000end'],
  ])('round-trips %s exactly', async (_name, text) => {
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: text });
    expect(sealed.status).toBe(200);
    const opened = await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text });
    expect(opened.body.plain_text).toBe(text);
    expect(Buffer.from(opened.body.plain_text_base64, 'base64').equals(Buffer.from(text, 'utf8'))).toBe(true);
  });

  it('makes a different blob every time (a fresh IV per seal)', async () => {
    const first = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'same' });
    const second = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'same' });
    expect(first.body.cipher_text).not.toBe(second.body.cipher_text);
  });

  it('seals under the key\'s current material version and opens every version by the one the blob carries', async () => {
    const key = await createKeyId(kms, 'data-two-versions');
    const old = await kms.call('encrypt-data', { key_id: key, plain_text: 'under v0' });
    expect(blobMaterialVersion(Buffer.from(old.body.cipher_text, 'base64'))).toBe(0);
    await addMaterialVersion(t, key);
    const current = await kms.call('encrypt-data', { key_id: key, plain_text: 'under v1' });
    expect(blobMaterialVersion(Buffer.from(current.body.cipher_text, 'base64'))).toBe(1);
    expect((await kms.call('decrypt-data', { cipher_text: old.body.cipher_text })).body.plain_text).toBe('under v0');
    expect((await kms.call('decrypt-data', { cipher_text: current.body.cipher_text })).body.plain_text).toBe('under v1');
  });
});

describe('encrypt-data refuses', () => {
  it.each([
    ['an empty plain_text', { plain_text: '' }, 'KMS.2101'],
    ['4097 bytes', { plain_text: 'z'.repeat(4097) }, 'KMS.2101'],
    ['4096 characters that are more than 4096 bytes', { plain_text: 'é'.repeat(2049) }, 'KMS.2101'],
    ['a lone surrogate (no UTF-8 form)', { plain_text: 'a\uD800b' }, 'KMS.2101'],
    ['a plain_text that is not a string', { plain_text: 42 }, 'KMS.2101'],
    ['an asymmetric algorithm (the keys here are symmetric)', { encryption_algorithm: 'RSAES_OAEP_SHA_256' }, 'KMS.2105'],
    ['SM2_ENCRYPT', { encryption_algorithm: 'SM2_ENCRYPT' }, 'KMS.2105'],
    ['an algorithm the API does not define', { encryption_algorithm: 'AES_GCM' }, 'KMS.0308'],
    ['AAD over 128 bytes', { additional_authenticated_data: 'é'.repeat(65) }, 'KMS.0308'],
    ['an encryption_context of non-strings', { encryption_context: { n: 1 } }, 'KMS.0208'],
    ['a malformed key_id', { key_id: 'not-a-key' }, 'KMS.0205'],
    ['a malformed sequence', { sequence: 'short' }, 'KMS.0206'],
  ])('%s with %s', async (_name, fields, code) => {
    expectKmsError(await kms.call('encrypt-data', { key_id: keyId, plain_text: 'secret', ...fields }), 400, code);
  });

  it.each([
    ['key_id', { plain_text: 'secret' }],
    ['plain_text', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f' }],
  ])('a request without %s (KMS.0204)', async (_field, body) => {
    expectKmsError(await kms.call('encrypt-data', body), 400, 'KMS.0204');
  });

  it('an unknown key (KMS.0207)', async () => {
    expectKmsError(await kms.call('encrypt-data', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f', plain_text: 'x' }), 404, 'KMS.0207');
  });
});

describe('decrypt-data refuses what it cannot trust', () => {
  let blob: string;
  beforeAll(async () => {
    // 44 bytes: a 148-byte blob, whose base64 ends in "==" (the padding and spare-bit cases need one).
    blob = (await kms.call('encrypt-data', { key_id: keyId, plain_text: 'the quick brown fox jumps over the lazy dog!' })).body.cipher_text;
    expect(blob.endsWith('==')).toBe(true);
  });

  it("a blob in Huawei Cloud KMS's own format version, trailer and all (KMS.2201)", async () => {
    const foreign = reframed(Buffer.from(blob, 'base64'), HUAWEI_FORMAT).toString('base64');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: foreign }), 400, 'KMS.2201');
  });

  it('every single-byte change (KMS.2201)', async () => {
    const bytes = Buffer.from(blob, 'base64');
    const failures: unknown[] = [];
    for (let offset = 0; offset < bytes.length; offset++) {
      const tampered = Buffer.from(bytes);
      tampered[offset] = tampered[offset]! ^ 0x01;
      const response = await kms.call('decrypt-data', { cipher_text: tampered.toString('base64') });
      const code = response.body?.error?.error_code;
      if (response.status !== 400 || code !== 'KMS.2201') failures.push({ offset, status: response.status, code });
    }
    expect(failures).toEqual([]);
  });

  it('a change of IV, ciphertext or tag with the trailer recomputed: GCM in the HSM refuses (KMS.2201)', async () => {
    const decrypt = jest.spyOn(t.service.hsm.symmetric, 'decrypt');
    try {
      const bytes = Buffer.from(blob, 'base64');
      const tagEnd = bytes.readUInt16LE(2) - 36;
      for (const offset of [4, 15, 16, tagEnd - 17, tagEnd - 16, tagEnd - 1]) {
        const tampered = Buffer.from(bytes);
        tampered[offset] = tampered[offset]! ^ 0x01;
        decrypt.mockClear();
        expectKmsError(await kms.call('decrypt-data', { cipher_text: withTrailerRecomputed(tampered).toString('base64') }), 400, 'KMS.2201');
        expect(decrypt).toHaveBeenCalledTimes(1);
      }
    } finally {
      decrypt.mockRestore();
    }
  });

  it.each([
    ['truncated', (text: string) => text.slice(0, -4)],
    ['without its padding', (text: string) => text.replace(/=+$/, '')],
    ['with a character that is not base64', (text: string) => `${text.slice(0, 10)}!${text.slice(11)}`],
    ['too short for any blob', (text: string) => text.slice(0, 64)],
    ['in hex instead of base64', (text: string) => Buffer.from(text, 'base64').toString('hex').slice(0, 5648)],
  ])('a blob %s (KMS.2201)', async (_name, change) => {
    expectKmsError(await kms.call('decrypt-data', { cipher_text: change(blob) }), 400, 'KMS.2201');
  });

  it('a base64 spelling with unused bits set, which would decode alike (KMS.2201)', async () => {
    // The last character before the padding carries bits the decoder drops: a second spelling of one blob.
    const padding = '==';
    const last = blob[blob.length - padding.length - 1]!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const other = alphabet[alphabet.indexOf(last) ^ 1]!;
    const respelt = blob.slice(0, blob.length - padding.length - 1) + other + padding;
    expect(Buffer.from(respelt, 'base64').equals(Buffer.from(blob, 'base64'))).toBe(true);
    expectKmsError(await kms.call('decrypt-data', { cipher_text: respelt }), 400, 'KMS.2201');
  });

  it('a key_id other than the key the blob names, even of the same project (KMS.2201)', async () => {
    const otherKey = await createKeyId(kms, 'data-other-key');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: blob, key_id: otherKey }), 400, 'KMS.2201');
  });

  it('an asymmetric algorithm (KMS.2105), an unknown one (KMS.0308), a malformed key_id (KMS.0205), no cipher_text (KMS.0204)', async () => {
    expectKmsError(await kms.call('decrypt-data', { cipher_text: blob, encryption_algorithm: 'SM2_ENCRYPT' }), 400, 'KMS.2105');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: blob, encryption_algorithm: 'AES' }), 400, 'KMS.0308');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: blob, key_id: 'alias x' }), 400, 'KMS.0205');
    expectKmsError(await kms.call('decrypt-data', { key_id: keyId }), 400, 'KMS.0204');
  });
});

describe('a data blob is never a data key blob, nor the reverse', () => {
  const plaintext = 'k'.repeat(32); // the length of an AES-256 data key

  it('decrypt-data refuses a data key blob, and decrypt-datakey a data blob, by their frames (KMS.2201)', async () => {
    const dataKey = await kms.call('create-datakey', { key_id: keyId });
    const dataKeyBlob = Buffer.from(dataKey.body.cipher_text, 'hex');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: dataKeyBlob.toString('base64') }), 400, 'KMS.2201');

    const data = await kms.call('encrypt-data', { key_id: keyId, plain_text: plaintext });
    const dataBlob = Buffer.from(data.body.cipher_text, 'base64');
    expectKmsError(await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: dataBlob.toString('hex'), datakey_cipher_length: '32' }), 400, 'KMS.2201');
  });

  it('with the frame rewritten to the other kind, GCM in the HSM refuses: the purpose is in the additional data (KMS.2201)', async () => {
    const decrypt = jest.spyOn(t.service.hsm.symmetric, 'decrypt');
    try {
      const data = await kms.call('encrypt-data', { key_id: keyId, plain_text: plaintext });
      const asDataKey = reframed(Buffer.from(data.body.cipher_text, 'base64'), BLOB_FORMAT_V1);
      decrypt.mockClear();
      const openedAsKey = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: asDataKey.toString('hex'), datakey_cipher_length: '32' });
      expectKmsError(openedAsKey, 400, 'KMS.2201');
      expect(decrypt).toHaveBeenCalledTimes(1); // the frame passed; the HSM refused

      const dataKey = await kms.call('create-datakey', { key_id: keyId });
      const asData = reframed(Buffer.from(dataKey.body.cipher_text, 'hex'), DATA_BLOB_FORMAT_V1);
      decrypt.mockClear();
      const openedAsData = await kms.call('decrypt-data', { cipher_text: asData.toString('base64') });
      expectKmsError(openedAsData, 400, 'KMS.2201');
      expect(decrypt).toHaveBeenCalledTimes(1);
      expect(JSON.stringify(openedAsData.body)).not.toContain(Buffer.from(dataKey.body.plain_text, 'hex').toString('base64'));
    } finally {
      decrypt.mockRestore();
    }
  });
});

describe('binding: what was given at encryption must be given at decryption', () => {
  const context = { table: 'cards', row: '42' };

  it('opens with the same encryption_context, in any key order, and the same AAD', async () => {
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'bound', encryption_context: context, additional_authenticated_data: 'v1' });
    const opened = await kms.call('decrypt-data', {
      cipher_text: sealed.body.cipher_text,
      encryption_context: { row: '42', table: 'cards' },
      additional_authenticated_data: 'v1',
    });
    expect(opened.body.plain_text).toBe('bound');
  });

  it.each([
    ['no binding', {}],
    ['another context value', { encryption_context: { ...context, row: '43' }, additional_authenticated_data: 'v1' }],
    ['another AAD', { encryption_context: context, additional_authenticated_data: 'v2' }],
    ['the context without the AAD', { encryption_context: context }],
    ['the AAD without the context', { additional_authenticated_data: 'v1' }],
  ])('refuses %s with KMS.2201', async (_name, binding) => {
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'bound', encryption_context: context, additional_authenticated_data: 'v1' });
    expectKmsError(await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text, ...binding }), 400, 'KMS.2201');
  });
});

describe('key states, projects and permissions', () => {
  it('refuses a disabled key (KMS.0209) both ways, and opens again once enabled', async () => {
    const key = await createKeyId(kms, 'data-to-disable');
    const sealed = await kms.call('encrypt-data', { key_id: key, plain_text: 'x' });
    await kms.call('disable-key', { key_id: key });
    expectKmsError(await kms.call('encrypt-data', { key_id: key, plain_text: 'x' }), 400, 'KMS.0209');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text }), 400, 'KMS.0209');
    await kms.call('enable-key', { key_id: key });
    expect((await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text })).body.plain_text).toBe('x');
  });

  it('refuses a key pending deletion (KMS.0210) both ways', async () => {
    const key = await createKeyId(kms, 'data-to-delete');
    const sealed = await kms.call('encrypt-data', { key_id: key, plain_text: 'x' });
    expect((await kms.call('schedule-key-deletion', { key_id: key, pending_days: '7' })).status).toBe(200);
    expectKmsError(await kms.call('encrypt-data', { key_id: key, plain_text: 'x' }), 400, 'KMS.0210');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text }), 400, 'KMS.0210');
  });

  it("hides a project's keys and blobs from another project (KMS.0207), with or without key_id", async () => {
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'x' });
    const other = t.client('project-b');
    expectKmsError(await other.call('encrypt-data', { key_id: keyId, plain_text: 'x' }), 404, 'KMS.0207');
    expectKmsError(await other.call('decrypt-data', { cipher_text: sealed.body.cipher_text }), 404, 'KMS.0207');
    expectKmsError(await other.call('decrypt-data', { cipher_text: sealed.body.cipher_text, key_id: keyId }), 404, 'KMS.0207');
  });

  it('needs kms:cmk:crypto: a data-key-only credential is refused (403 KMS.0307)', async () => {
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'x' });
    const dekOnly = t.client('project-a', ['kms:dek:*']);
    expectKmsError(await dekOnly.call('encrypt-data', { key_id: keyId, plain_text: 'x' }), 403, 'KMS.0307');
    expectKmsError(await dekOnly.call('decrypt-data', { cipher_text: sealed.body.cipher_text }), 403, 'KMS.0307');
    const cryptoOnly = t.client('project-a', ['kms:cmk:crypto']);
    expect((await cryptoOnly.call('decrypt-data', { cipher_text: sealed.body.cipher_text })).body.plain_text).toBe('x');
  });

  it('refuses a request without a credential (401 APIGW.0301)', async () => {
    const anonymous = kmsClient(t.service.url, 'project-a');
    expectKmsError(await anonymous.call('encrypt-data', { key_id: keyId, plain_text: 'x' }), 401, 'APIGW.0301');
  });
});

describe('audit and logs', () => {
  it('audits both operations with the key the blob named, and never writes the plaintext anywhere', async () => {
    const secret = 'plaintext-that-must-not-leak-7f3a';
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: secret });
    const opened = await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text });
    expect(opened.body.plain_text).toBe(secret);
    await new Promise((resolve) => setImmediate(resolve));
    const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
    for (const response of [sealed, opened]) {
      const record = lines.find((line) => line.request_id === response.headers.get('x-request-id'));
      expect(record).toMatchObject({ key_id: keyId, permission: 'kms:cmk:crypto', status: 200, result: 'OK' });
    }
    const everything = readFileSync(t.config.auditLogPath, 'utf8') + t.logs.text;
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(Buffer.from(secret).toString('base64').slice(0, 20));
  });
});

describe('through the official SDK (its signer, the SDK models\' field names)', () => {
  it('encrypts and decrypts as EncryptDataRequestBody and DecryptDataRequestBody send them', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:cmk:crypto'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-a', ak: issued.access_key, sk: issued.secret_key });
    const sealed = await sdk.call('encrypt-data', {
      key_id: keyId,
      plain_text: 'through the SDK',
      encryption_algorithm: 'SYMMETRIC_DEFAULT',
      additional_authenticated_data: 'sdk-aad',
      sequence: '919c82d4-8046-4722-9094-35c3c6524cff',
    });
    expect(sealed.status).toBe(200);
    const opened = await sdk.call('decrypt-data', { cipher_text: sealed.body.cipher_text, additional_authenticated_data: 'sdk-aad' });
    expect(opened.body).toEqual({ key_id: keyId, plain_text: 'through the SDK', plain_text_base64: Buffer.from('through the SDK').toString('base64') });
    expect(await sdk.call('decrypt-data', { cipher_text: sealed.body.cipher_text })).toMatchObject({ status: 400, errorCode: 'KMS.2201' });
  });
});
