import { constants, createPublicKey, publicEncrypt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { withTrailerRecomputed } from '../helpers/blob';
import { createKeyId, expectKmsError } from '../helpers/client';
import { addMaterialVersion, blobMaterialVersion } from '../helpers/material-version';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';
import { testModuleKind } from '../helpers/test-module';
import { BLOB_FORMAT_V1 } from '../../src/kms/blob-codec';
import { DATA_BLOB_FORMAT_V1 } from '../../src/kms/data-blob-codec';

/**
 * re-encrypt: a data key blob (hex) or a data blob (base64) moved to another key, or to the newest
 * material version of its own, inside the service. Steps: seal → re-encrypt → open under the new key.
 */

let source: string;
let destination: string;

async function auditRecord(response: { headers: Headers }): Promise<Record<string, unknown>> {
  await new Promise((resolve) => setImmediate(resolve));
  const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
  return lines.find((line) => line.request_id === response.headers.get('x-request-id'));
}

const t = useTestService();
const kms = t.client('project-a');

beforeAll(async () => {
  source = await createKeyId(kms, 're-encrypt-source');
  destination = await createKeyId(kms, 're-encrypt-destination');
});

describe('a data key blob moves to another key', () => {
  it('create-datakey → re-encrypt → decrypt-datakey under the destination gives the same data key', async () => {
    const created = await kms.call('create-datakey', { key_id: source });
    const moved = await kms.call('re-encrypt', { cipher_text: created.body.cipher_text, destination_key_id: destination });
    expect(moved.status).toBe(200);
    expect(Object.keys(moved.body).sort()).toEqual(['cipher_text', 'destination_encryption_algorithm', 'key_id', 'source_encryption_algorithm', 'source_key_id']);
    expect(moved.body).toMatchObject({
      key_id: destination,
      source_key_id: source,
      source_encryption_algorithm: 'SYMMETRIC_DEFAULT',
      destination_encryption_algorithm: 'SYMMETRIC_DEFAULT',
    });
    // Still a data key blob, in upper-case hex, now naming the destination; no plaintext in the answer.
    expect(moved.body.cipher_text).toMatch(/^[0-9A-F]+$/);
    expect(Buffer.from(moved.body.cipher_text, 'hex').readUInt16LE(0)).toBe(BLOB_FORMAT_V1);
    expect(JSON.stringify(moved.body)).not.toContain(created.body.plain_text);

    const opened = await kms.call('decrypt-datakey', { key_id: destination, cipher_text: moved.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.body.data_key).toBe(created.body.plain_text);
    // It is the destination's now: the source key does not open it.
    expectKmsError(await kms.call('decrypt-datakey', { key_id: source, cipher_text: moved.body.cipher_text, datakey_cipher_length: '32' }), 400, 'KMS.2201');
  });

  it('takes source_key_id, lower-case hex and a matching datakey_cipher_length', async () => {
    const created = await kms.call('create-datakey', { key_id: source, datakey_length: '512' });
    const moved = await kms.call('re-encrypt', {
      source_key_id: source,
      cipher_text: created.body.cipher_text.toLowerCase(),
      destination_key_id: destination,
      datakey_cipher_length: '64',
      source_encryption_algorithm: 'SYMMETRIC_DEFAULT',
      destination_encryption_algorithm: 'SYMMETRIC_DEFAULT',
    });
    expect(moved.status).toBe(200);
    const opened = await kms.call('decrypt-datakey', { key_id: destination, cipher_text: moved.body.cipher_text, datakey_cipher_length: '64' });
    expect(opened.body.data_key).toBe(created.body.plain_text);
  });

  it('stays a data key blob: decrypt-data refuses it (KMS.2201)', async () => {
    const created = await kms.call('create-datakey', { key_id: source });
    const moved = await kms.call('re-encrypt', { cipher_text: created.body.cipher_text, destination_key_id: destination });
    const asBase64 = Buffer.from(moved.body.cipher_text, 'hex').toString('base64');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: asBase64 }), 400, 'KMS.2201');
  });
});

describe('a data blob moves to another key', () => {
  it('encrypt-data → re-encrypt → decrypt-data gives the same plaintext, under the destination', async () => {
    const sealed = await kms.call('encrypt-data', { key_id: source, plain_text: 'moved but never shown' });
    const moved = await kms.call('re-encrypt', { cipher_text: sealed.body.cipher_text, destination_key_id: destination });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ key_id: destination, source_key_id: source });
    const bytes = Buffer.from(moved.body.cipher_text, 'base64');
    expect(bytes.toString('base64')).toBe(moved.body.cipher_text);
    expect(bytes.readUInt16LE(0)).toBe(DATA_BLOB_FORMAT_V1);
    expect(JSON.stringify(moved.body)).not.toContain(Buffer.from('moved but never shown').toString('base64').slice(0, 16));

    const opened = await kms.call('decrypt-data', { cipher_text: moved.body.cipher_text });
    expect(opened.body).toMatchObject({ key_id: destination, plain_text: 'moved but never shown' });
  });
});

describe('to the newest material version of the same key', () => {
  it('re-seals a version-0 blob of either kind under version 1, and both generations still open', async () => {
    const key = await createKeyId(kms, 're-encrypt-rotated');
    const dataKey = await kms.call('create-datakey', { key_id: key });
    const data = await kms.call('encrypt-data', { key_id: key, plain_text: 'generation zero' });
    await addMaterialVersion(t, key);

    const movedKey = await kms.call('re-encrypt', { cipher_text: dataKey.body.cipher_text, destination_key_id: key });
    const movedData = await kms.call('re-encrypt', { cipher_text: data.body.cipher_text, destination_key_id: key });
    expect(movedKey.body).toMatchObject({ key_id: key, source_key_id: key });
    expect(blobMaterialVersion(Buffer.from(dataKey.body.cipher_text, 'hex'))).toBe(0);
    expect(blobMaterialVersion(Buffer.from(movedKey.body.cipher_text, 'hex'))).toBe(1);
    expect(blobMaterialVersion(Buffer.from(movedData.body.cipher_text, 'base64'))).toBe(1);

    for (const blob of [dataKey.body.cipher_text, movedKey.body.cipher_text]) {
      const opened = await kms.call('decrypt-datakey', { key_id: key, cipher_text: blob, datakey_cipher_length: '32' });
      expect(opened.body.data_key).toBe(dataKey.body.plain_text);
    }
    for (const blob of [data.body.cipher_text, movedData.body.cipher_text]) {
      expect((await kms.call('decrypt-data', { cipher_text: blob })).body.plain_text).toBe('generation zero');
    }
  });
});

describe('bindings: the source is checked, the destination applied', () => {
  const context = { tenant: 'acme' };

  it('opens with the source AAD and context, and seals with the destination ones', async () => {
    const created = await kms.call('create-datakey', { key_id: source, additional_authenticated_data: 'old-aad', encryption_context: context });
    const moved = await kms.call('re-encrypt', {
      cipher_text: created.body.cipher_text,
      source_additional_authenticated_data: 'old-aad',
      source_encryption_context: context,
      destination_key_id: destination,
      destination_additional_authenticated_data: 'new-aad',
    });
    expect(moved.status).toBe(200);
    const decrypt = (binding: object) =>
      kms.call('decrypt-datakey', { key_id: destination, cipher_text: moved.body.cipher_text, datakey_cipher_length: '32', ...binding });
    expect((await decrypt({ additional_authenticated_data: 'new-aad' })).body.data_key).toBe(created.body.plain_text);
    // The source binding does not carry over: only the destination's opens the new blob.
    expectKmsError(await decrypt({ additional_authenticated_data: 'old-aad', encryption_context: context }), 400, 'KMS.2201');
    expectKmsError(await decrypt({}), 400, 'KMS.2201');
  });

  it('applies a destination context to a data blob', async () => {
    const sealed = await kms.call('encrypt-data', { key_id: source, plain_text: 'ctx', additional_authenticated_data: 'a' });
    const moved = await kms.call('re-encrypt', {
      cipher_text: sealed.body.cipher_text,
      source_additional_authenticated_data: 'a',
      destination_key_id: destination,
      destination_encryption_context: context,
    });
    expect((await kms.call('decrypt-data', { cipher_text: moved.body.cipher_text, encryption_context: context })).body.plain_text).toBe('ctx');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: moved.body.cipher_text, additional_authenticated_data: 'a' }), 400, 'KMS.2201');
  });

  it.each([
    ['no source binding', {}],
    ['another source AAD', { source_additional_authenticated_data: 'other', source_encryption_context: context }],
    ['the source AAD without the context', { source_additional_authenticated_data: 'old-aad' }],
    ['another source context', { source_additional_authenticated_data: 'old-aad', source_encryption_context: { tenant: 'other' } }],
  ])('refuses %s (KMS.2201), before anything is sealed', async (_name, binding) => {
    const created = await kms.call('create-datakey', { key_id: source, additional_authenticated_data: 'old-aad', encryption_context: context });
    const encrypt = jest.spyOn(t.service.hsm.symmetric, 'encrypt');
    try {
      expectKmsError(await kms.call('re-encrypt', { cipher_text: created.body.cipher_text, destination_key_id: destination, ...binding }), 400, 'KMS.2201');
      expect(encrypt).not.toHaveBeenCalled();
    } finally {
      encrypt.mockRestore();
    }
  });

  it.each([
    ['a source context of non-strings', { source_encryption_context: { n: 1 } }, 'KMS.0208'],
    ['a destination context of non-strings', { destination_encryption_context: { n: 1 } }, 'KMS.0208'],
    ['a source AAD over 128 bytes', { source_additional_authenticated_data: 'é'.repeat(65) }, 'KMS.0308'],
    ['a destination AAD over 128 bytes', { destination_additional_authenticated_data: 'x'.repeat(129) }, 'KMS.0308'],
  ])('refuses %s (%s) before the HSM is asked', async (_name, fields, code) => {
    const created = await kms.call('create-datakey', { key_id: source });
    const decrypt = jest.spyOn(t.service.hsm.symmetric, 'decrypt');
    try {
      expectKmsError(await kms.call('re-encrypt', { cipher_text: created.body.cipher_text, destination_key_id: destination, ...fields }), 400, code);
      expect(decrypt).not.toHaveBeenCalled();
    } finally {
      decrypt.mockRestore();
    }
  });
});

describe('re-encrypt refuses', () => {
  let dataKeyBlob: string;
  let dataBlob: string;
  beforeAll(async () => {
    dataKeyBlob = (await kms.call('create-datakey', { key_id: source })).body.cipher_text;
    dataBlob = (await kms.call('encrypt-data', { key_id: source, plain_text: 'k'.repeat(32) })).body.cipher_text;
  });

  it.each([
    ['cipher_text', () => ({ destination_key_id: destination })],
    ['destination_key_id', () => ({ cipher_text: dataKeyBlob })],
  ])('a request without %s (KMS.0204)', async (_field, body) => {
    expectKmsError(await kms.call('re-encrypt', body()), 400, 'KMS.0204');
  });

  it('a source_key_id other than the key the blob names (KMS.2201)', async () => {
    expectKmsError(await kms.call('re-encrypt', { cipher_text: dataKeyBlob, source_key_id: destination, destination_key_id: destination }), 400, 'KMS.2201');
  });

  it('a datakey_cipher_length that does not match the data key (KMS.2204) or is out of range (KMS.0308)', async () => {
    expectKmsError(await kms.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: destination, datakey_cipher_length: '16' }), 400, 'KMS.2204');
    expectKmsError(await kms.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: destination, datakey_cipher_length: '0' }), 400, 'KMS.0308');
    expectKmsError(await kms.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: destination, datakey_cipher_length: '1025' }), 400, 'KMS.0308');
  });

  it.each([
    ['an asymmetric source algorithm', { source_encryption_algorithm: 'RSAES_OAEP_SHA_1' }, 'KMS.2105'],
    ['an asymmetric destination algorithm', { destination_encryption_algorithm: 'RSAES_OAEP_SHA_256' }, 'KMS.2105'],
    ['an algorithm the API does not define', { destination_encryption_algorithm: 'AES' }, 'KMS.0308'],
    ['a malformed destination_key_id', { destination_key_id: 'alias x' }, 'KMS.0205'],
    ['a malformed source_key_id', { source_key_id: 'x' }, 'KMS.0205'],
  ])('%s (%s)', async (_name, fields, code) => {
    expectKmsError(await kms.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: destination, ...fields }), 400, code);
  });

  it.each([
    ['an odd number of hex digits', () => dataKeyBlob.slice(0, -1)],
    ['a truncated data key blob', () => dataKeyBlob.slice(0, -2)],
    ['a truncated data blob', () => dataBlob.slice(0, -4)],
    ['a data blob in hex', () => Buffer.from(dataBlob, 'base64').toString('hex')],
    ['a data key blob in base64', () => Buffer.from(dataKeyBlob, 'hex').toString('base64')],
    ['a character neither hex nor base64', () => `${dataKeyBlob.slice(0, 10)}!${dataKeyBlob.slice(11)}`],
  ])('%s (KMS.2201)', async (_name, text) => {
    expectKmsError(await kms.call('re-encrypt', { cipher_text: text(), destination_key_id: destination }), 400, 'KMS.2201');
  });

  it('every single-byte change of a data key blob and of a data blob (KMS.2201)', async () => {
    const failures: unknown[] = [];
    for (const [bytes, encode] of [
      [Buffer.from(dataKeyBlob, 'hex'), (b: Buffer) => b.toString('hex')],
      [Buffer.from(dataBlob, 'base64'), (b: Buffer) => b.toString('base64')],
    ] as const) {
      for (let offset = 0; offset < bytes.length; offset += 3) {
        const tampered = Buffer.from(bytes);
        tampered[offset] = tampered[offset]! ^ 0x01;
        const response = await kms.call('re-encrypt', { cipher_text: encode(tampered), destination_key_id: destination });
        if (response.status !== 400 || response.body?.error?.error_code !== 'KMS.2201') failures.push({ offset, status: response.status });
      }
    }
    expect(failures).toEqual([]);
  });

  it('a change with the trailer recomputed, or a blob re-framed as the other kind: GCM in the HSM refuses (KMS.2201)', async () => {
    const decrypt = jest.spyOn(t.service.hsm.symmetric, 'decrypt');
    const encrypt = jest.spyOn(t.service.hsm.symmetric, 'encrypt');
    try {
      const tampered = Buffer.from(dataKeyBlob, 'hex');
      tampered[20] = tampered[20]! ^ 0x01;
      // A data blob of 32 bytes in a data key blob's frame: only the purpose in the additional data tells them apart.
      const dataAsKey = Buffer.from(dataBlob, 'base64');
      dataAsKey.writeUInt16LE(BLOB_FORMAT_V1, 0);
      const keyAsData = Buffer.from(dataKeyBlob, 'hex');
      keyAsData.writeUInt16LE(DATA_BLOB_FORMAT_V1, 0);
      for (const text of [
        withTrailerRecomputed(tampered).toString('hex'),
        withTrailerRecomputed(dataAsKey).toString('hex'),
        withTrailerRecomputed(keyAsData).toString('base64'),
      ]) {
        decrypt.mockClear();
        expectKmsError(await kms.call('re-encrypt', { cipher_text: text, destination_key_id: destination }), 400, 'KMS.2201');
        expect(decrypt).toHaveBeenCalledTimes(1);
      }
      expect(encrypt).not.toHaveBeenCalled();
    } finally {
      decrypt.mockRestore();
      encrypt.mockRestore();
    }
  });

  it('a disabled or deleted source or destination (KMS.0209, KMS.0210)', async () => {
    const disabled = await createKeyId(kms, 're-encrypt-disabled');
    const blob = (await kms.call('create-datakey', { key_id: disabled })).body.cipher_text;
    await kms.call('disable-key', { key_id: disabled });
    expectKmsError(await kms.call('re-encrypt', { cipher_text: blob, destination_key_id: destination }), 400, 'KMS.0209');
    expectKmsError(await kms.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: disabled }), 400, 'KMS.0209');
    await kms.call('schedule-key-deletion', { key_id: disabled, pending_days: '7' });
    expectKmsError(await kms.call('re-encrypt', { cipher_text: blob, destination_key_id: destination }), 400, 'KMS.0210');
    expectKmsError(await kms.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: disabled }), 400, 'KMS.0210');
  });

  it("keys of another project, as source or destination (KMS.0207)", async () => {
    const other = t.client('project-b');
    const theirs = await createKeyId(other, 'project-b-key');
    const theirBlob = (await other.call('create-datakey', { key_id: theirs })).body.cipher_text;
    expectKmsError(await kms.call('re-encrypt', { cipher_text: theirBlob, destination_key_id: destination }), 404, 'KMS.0207');
    expectKmsError(await kms.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: theirs }), 404, 'KMS.0207');
    expectKmsError(await other.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: theirs }), 404, 'KMS.0207');
  });

  it('without kms:cmk:crypto, for either kind of blob (403 KMS.0307)', async () => {
    const dekOnly = t.client('project-a', ['kms:dek:*']);
    expectKmsError(await dekOnly.call('re-encrypt', { cipher_text: dataKeyBlob, destination_key_id: destination }), 403, 'KMS.0307');
    expectKmsError(await dekOnly.call('re-encrypt', { cipher_text: dataBlob, destination_key_id: destination }), 403, 'KMS.0307');
    const cryptoOnly = t.client('project-a', ['kms:cmk:crypto']);
    expect((await cryptoOnly.call('re-encrypt', { cipher_text: dataBlob, destination_key_id: destination })).status).toBe(200);
  });
});

describe('an RSA-OAEP source (encrypt-data with an RSA ENCRYPT_DECRYPT key) moves to an AES key as a data blob', () => {
  let rsaKey: string;
  let encryptLocally: (plaintext: Buffer, hash?: string) => string;
  beforeAll(async () => {
    const created = await kms.call('create-key', { key_alias: 're-encrypt-rsa', key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
    expect(created.status).toBe(200);
    rsaKey = created.body.key_info.key_id;
    const publicKey = createPublicKey((await kms.call('get-publickey', { key_id: rsaKey })).body.public_key);
    encryptLocally = (plaintext, hash = 'sha1') => publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, plaintext).toString('base64');
  });

  it('RSAES_OAEP_SHA_1: decrypted in the HSM, sealed under the destination; decrypt-data gives the bytes back exactly, any bytes', async () => {
    const plaintext = Buffer.from([0xff, 0x00, 0xfe, 0x80, 0x41]);
    const moved = await kms.call('re-encrypt', { cipher_text: encryptLocally(plaintext), source_key_id: rsaKey, source_encryption_algorithm: 'RSAES_OAEP_SHA_1', destination_key_id: destination });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ key_id: destination, source_key_id: rsaKey, source_encryption_algorithm: 'RSAES_OAEP_SHA_1', destination_encryption_algorithm: 'SYMMETRIC_DEFAULT' });
    expect(Buffer.from(moved.body.cipher_text, 'base64').readUInt16LE(0)).toBe(DATA_BLOB_FORMAT_V1);
    const opened = await kms.call('decrypt-data', { cipher_text: moved.body.cipher_text });
    expect(opened.status).toBe(200);
    expect(opened.body.key_id).toBe(destination);
    expect(Buffer.from(opened.body.plain_text_base64, 'base64')).toEqual(plaintext);
    // And encrypt-data's own RSA ciphertext, with a destination AAD that the data blob then needs.
    const encrypted = await kms.call('encrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', plain_text: 'from RSA to AES' });
    const again = await kms.call('re-encrypt', { cipher_text: encrypted.body.cipher_text, source_key_id: rsaKey, source_encryption_algorithm: 'RSAES_OAEP_SHA_1', destination_key_id: destination, destination_additional_authenticated_data: 'aad' });
    expect(again.status).toBe(200);
    expectKmsError(await kms.call('decrypt-data', { cipher_text: again.body.cipher_text }), 400, 'KMS.2201');
    expect((await kms.call('decrypt-data', { cipher_text: again.body.cipher_text, additional_authenticated_data: 'aad' })).body.plain_text).toBe('from RSA to AES');
  });

  it('RSAES_OAEP_SHA_256 where the module decrypts with it (NSS), refused naming it where not (SoftHSM: KMS.2106)', async () => {
    const moved = await kms.call('re-encrypt', { cipher_text: encryptLocally(Buffer.from('sha-256'), 'sha256'), source_key_id: rsaKey, source_encryption_algorithm: 'RSAES_OAEP_SHA_256', destination_key_id: destination });
    if (testModuleKind() !== 'nss') {
      expectKmsError(moved, 400, 'KMS.2106');
      expect(moved.body.error.error_msg).toContain('RSAES_OAEP_SHA_256');
      return;
    }
    expect(moved.status).toBe(200);
    expect((await kms.call('decrypt-data', { cipher_text: moved.body.cipher_text })).body.plain_text).toBe('sha-256');
  });

  it('refuses: no source_key_id (KMS.0308), an RSA key with SYMMETRIC_DEFAULT (KMS.2106), an AES key with OAEP (KMS.2105), a source binding (KMS.0308), a ciphertext under another key (KMS.0311), an RSA destination without an OAEP destination_encryption_algorithm (KMS.2106)', async () => {
    const cipherText = encryptLocally(Buffer.from('x'));
    const body = { cipher_text: cipherText, source_key_id: rsaKey, source_encryption_algorithm: 'RSAES_OAEP_SHA_1', destination_key_id: destination };
    const withoutKey = await kms.call('re-encrypt', { ...body, source_key_id: undefined });
    expectKmsError(withoutKey, 400, 'KMS.0308');
    expect(withoutKey.body.error.error_msg).toContain('source_key_id');
    expectKmsError(await kms.call('re-encrypt', { ...body, source_encryption_algorithm: undefined }), 400, 'KMS.2106');
    expectKmsError(await kms.call('re-encrypt', { ...body, source_encryption_algorithm: 'SYMMETRIC_DEFAULT' }), 400, 'KMS.2106');
    expectKmsError(await kms.call('re-encrypt', { ...body, source_key_id: source }), 400, 'KMS.2105');
    expectKmsError(await kms.call('re-encrypt', { ...body, source_additional_authenticated_data: 'aad' }), 400, 'KMS.0308');
    expectKmsError(await kms.call('re-encrypt', { ...body, source_encryption_context: { a: 'b' } }), 400, 'KMS.0308');
    expectKmsError(await kms.call('re-encrypt', { ...body, destination_key_id: rsaKey }), 400, 'KMS.2106');
    const other = await kms.call('create-key', { key_alias: 're-encrypt-rsa-other', key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
    expectKmsError(await kms.call('re-encrypt', { ...body, source_key_id: other.body.key_info.key_id }), 400, 'KMS.0311');
    // The request that fits still moves.
    expect((await kms.call('re-encrypt', body)).status).toBe(200);
  });

  it('a blob naming the RSA key, without source_key_id, is refused as before RSA sources were served (KMS.0325)', async () => {
    const bytes = Buffer.from((await kms.call('encrypt-data', { key_id: source, plain_text: 'x' })).body.cipher_text, 'base64');
    const keyIdEnd = bytes.readUInt16LE(2);
    bytes.write(rsaKey, keyIdEnd - 36, 'ascii');
    const forged = withTrailerRecomputed(bytes).toString('base64');
    expectKmsError(await kms.call('re-encrypt', { cipher_text: forged, destination_key_id: destination }), 400, 'KMS.0325');
    expectKmsError(await kms.call('decrypt-data', { cipher_text: forged }), 400, 'KMS.0325');
  });

  it('the audit record names the RSA key as the source and the AES key as key_id, never the plaintext', async () => {
    const secret = 'rsa-source-secret';
    const moved = await kms.call('re-encrypt', { cipher_text: encryptLocally(Buffer.from(secret)), source_key_id: rsaKey, source_encryption_algorithm: 'RSAES_OAEP_SHA_1', destination_key_id: destination });
    expect(moved.status).toBe(200);
    const record = await auditRecord(moved);
    expect(record).toMatchObject({ action: 're-encrypt', key_id: destination, source_key_id: rsaKey, algorithm: 'RSAES_OAEP_SHA_1', result: 'OK' });
    expect(JSON.stringify(record)).not.toContain(secret);
  });
});

describe('the audit trail', () => {
  it('names the destination as key_id and the source as source_key_id, and never the plaintext', async () => {
    const created = await kms.call('create-datakey', { key_id: source });
    const moved = await kms.call('re-encrypt', { cipher_text: created.body.cipher_text, destination_key_id: destination });
    expect(await auditRecord(moved)).toMatchObject({
      action: 're-encrypt',
      permission: 'kms:cmk:crypto',
      key_id: destination,
      source_key_id: source,
      status: 200,
      result: 'OK',
    });
    const everything = readFileSync(t.config.auditLogPath, 'utf8') + t.logs.text;
    expect(everything.toUpperCase()).not.toContain(created.body.plain_text);
  });

  it('names the source even when the destination was refused, and null for a source never found', async () => {
    const created = await kms.call('create-datakey', { key_id: source });
    const refused = await kms.call('re-encrypt', { cipher_text: created.body.cipher_text, destination_key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f' });
    expectKmsError(refused, 404, 'KMS.0207');
    expect(await auditRecord(refused)).toMatchObject({ key_id: null, source_key_id: source, result: 'KMS.0207' });
    const bad = await kms.call('re-encrypt', { cipher_text: created.body.cipher_text.slice(0, -2), destination_key_id: destination });
    expect(await auditRecord(bad)).toMatchObject({ key_id: null, source_key_id: null, result: 'KMS.2201' });
  });

  it('other operations carry no source_key_id', async () => {
    const created = await kms.call('create-datakey', { key_id: source });
    expect(await auditRecord(created)).not.toHaveProperty('source_key_id');
  });
});

describe('through the official SDK (its signer, ReEncryptRequestBody\'s field names)', () => {
  it('moves a data key blob and a data blob', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-a', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-datakey', { key_id: source, additional_authenticated_data: 'sdk' });
    const moved = await sdk.call('re-encrypt', {
      source_key_id: source,
      source_additional_authenticated_data: 'sdk',
      source_encryption_algorithm: 'SYMMETRIC_DEFAULT',
      destination_key_id: destination,
      destination_additional_authenticated_data: 'sdk-2',
      destination_encryption_algorithm: 'SYMMETRIC_DEFAULT',
      datakey_cipher_length: '32',
      cipher_text: created.body.cipher_text,
    });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ key_id: destination, source_key_id: source });
    const opened = await sdk.call('decrypt-datakey', {
      key_id: destination,
      cipher_text: moved.body.cipher_text,
      datakey_cipher_length: '32',
      additional_authenticated_data: 'sdk-2',
    });
    expect(opened.body.data_key).toBe(created.body.plain_text);

    const sealed = await sdk.call('encrypt-data', { key_id: source, plain_text: 'sdk data' });
    const movedData = await sdk.call('re-encrypt', { destination_key_id: destination, cipher_text: sealed.body.cipher_text });
    expect((await sdk.call('decrypt-data', { cipher_text: movedData.body.cipher_text })).body.plain_text).toBe('sdk data');
    expect(await sdk.call('re-encrypt', { destination_key_id: destination, cipher_text: 'AAAA' })).toMatchObject({ status: 400, errorCode: 'KMS.2201' });
  });

  it('moves an RSA-OAEP ciphertext of encrypt-data to an AES key', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-a', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-key', { key_alias: 're-encrypt-sdk-rsa', key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
    expect(created.status).toBe(200);
    const rsaKey: string = created.body.key_info.key_id;
    const encrypted = await sdk.call('encrypt-data', { key_id: rsaKey, encryption_algorithm: 'RSAES_OAEP_SHA_1', plain_text: 'sdk rsa data' });
    expect(encrypted.status).toBe(200);
    const moved = await sdk.call('re-encrypt', { source_key_id: rsaKey, source_encryption_algorithm: 'RSAES_OAEP_SHA_1', destination_key_id: destination, cipher_text: encrypted.body.cipher_text });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ key_id: destination, source_key_id: rsaKey, source_encryption_algorithm: 'RSAES_OAEP_SHA_1' });
    expect((await sdk.call('decrypt-data', { cipher_text: moved.body.cipher_text })).body.plain_text).toBe('sdk rsa data');
  });
});

describe('an RSA ENCRYPT_DECRYPT key as the destination: the plaintext encrypted with RSA-OAEP, which decrypt-data with that key opens', () => {
  let rsaKey: string;
  /** What the module decrypts with: SoftHSM 2.6 (and the shim over it) SHA-1 only, NSS's softoken SHA-256 too. */
  const oaep = testModuleKind() === 'nss' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
  beforeAll(async () => {
    rsaKey = await createKeyId(kms, 're-encrypt-rsa-destination', { key_spec: 'RSA_2048', key_usage: 'ENCRYPT_DECRYPT' });
  });

  const openWithRsa = (cipherText: string) => kms.call('decrypt-data', { key_id: rsaKey, cipher_text: cipherText, encryption_algorithm: oaep });

  it('a data key blob and a data blob: the answer is one RSA block, base64, and decrypt-data gives the data key\'s bytes, or the data, back', async () => {
    const dataKey = await kms.call('create-datakey', { key_id: source, datakey_length: '256' });
    const moved = await kms.call('re-encrypt', { cipher_text: dataKey.body.cipher_text, destination_key_id: rsaKey, destination_encryption_algorithm: oaep });
    expect(moved.status).toBe(200);
    expect(moved.body).toEqual({ key_id: rsaKey, source_key_id: source, source_encryption_algorithm: 'SYMMETRIC_DEFAULT', destination_encryption_algorithm: oaep, cipher_text: expect.any(String) });
    expect(Buffer.from(moved.body.cipher_text, 'base64')).toHaveLength(256);
    const opened = await openWithRsa(moved.body.cipher_text);
    expect(opened.status).toBe(200);
    expect(Buffer.from(opened.body.plain_text_base64, 'base64').toString('hex').toUpperCase()).toBe(dataKey.body.plain_text);

    const data = await kms.call('encrypt-data', { key_id: source, plain_text: 'to an RSA key' });
    const movedData = await kms.call('re-encrypt', { cipher_text: data.body.cipher_text, destination_key_id: rsaKey, destination_encryption_algorithm: oaep });
    expect(movedData.status).toBe(200);
    expect((await openWithRsa(movedData.body.cipher_text)).body.plain_text).toBe('to an RSA key');
  });

  it('an RSA-OAEP source to another RSA key', async () => {
    const sourceRsa = await createKeyId(kms, 're-encrypt-rsa-to-rsa', { key_spec: 'RSA_3072', key_usage: 'ENCRYPT_DECRYPT' });
    const encrypted = await kms.call('encrypt-data', { key_id: sourceRsa, encryption_algorithm: oaep, plain_text: 'between RSA keys' });
    const moved = await kms.call('re-encrypt', { cipher_text: encrypted.body.cipher_text, source_key_id: sourceRsa, source_encryption_algorithm: oaep, destination_key_id: rsaKey, destination_encryption_algorithm: oaep });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ key_id: rsaKey, source_key_id: sourceRsa, source_encryption_algorithm: oaep, destination_encryption_algorithm: oaep });
    expect((await openWithRsa(moved.body.cipher_text)).body.plain_text).toBe('between RSA keys');
  });

  it('refuses: SYMMETRIC_DEFAULT or none (KMS.2106), a destination binding (KMS.0308), a plaintext longer than OAEP takes (KMS.2108), an RSA key made to sign (KMS.0335), an EC key (KMS.0325)', async () => {
    const dataKey = (await kms.call('create-datakey', { key_id: source, datakey_length: '256' })).body.cipher_text as string;
    const body = { cipher_text: dataKey, destination_key_id: rsaKey, destination_encryption_algorithm: oaep };
    expectKmsError(await kms.call('re-encrypt', { ...body, destination_encryption_algorithm: 'SYMMETRIC_DEFAULT' }), 400, 'KMS.2106');
    expectKmsError(await kms.call('re-encrypt', { ...body, destination_encryption_algorithm: undefined }), 400, 'KMS.2106');
    expectKmsError(await kms.call('re-encrypt', { ...body, destination_additional_authenticated_data: 'aad' }), 400, 'KMS.0308');
    expectKmsError(await kms.call('re-encrypt', { ...body, destination_encryption_context: { a: 'b' } }), 400, 'KMS.0308');
    // 4096 bytes of data: far more than one RSA-2048 block holds.
    const large = await kms.call('encrypt-data', { key_id: source, plain_text: 'x'.repeat(4096) });
    const tooLarge = await kms.call('re-encrypt', { ...body, cipher_text: large.body.cipher_text });
    expectKmsError(tooLarge, 400, 'KMS.2108');
    expect(tooLarge.body.error.error_msg).toContain("the ciphertext's plaintext must be at most");
    const signing = await createKeyId(kms, 're-encrypt-rsa-signing', { key_spec: 'RSA_2048' });
    expectKmsError(await kms.call('re-encrypt', { ...body, destination_key_id: signing }), 400, 'KMS.0335');
    const ec = await createKeyId(kms, 're-encrypt-ec', { key_spec: 'EC_P256' });
    expectKmsError(await kms.call('re-encrypt', { ...body, destination_key_id: ec }), 400, 'KMS.0325');
    expect((await kms.call('re-encrypt', body)).status).toBe(200);
  });

  it('refuses a data key pair\'s private-key blob (KMS.0325: it stays a private-key blob), and an algorithm the HSM does not decrypt with (KMS.2106), before the source is opened', async () => {
    const pair = await kms.call('create-ec-datakey-pair', { key_id: source, key_spec: 'ECC_NIST_P256' });
    expect(pair.status).toBe(200);
    const refused = await kms.call('re-encrypt', { cipher_text: pair.body.private_key_cipher_text, destination_key_id: rsaKey, destination_encryption_algorithm: oaep });
    expectKmsError(refused, 400, 'KMS.0325');
    // Refused before it was opened: the record does not say a private key was.
    expect(await auditRecord(refused)).not.toHaveProperty('blob');
    if (testModuleKind() !== 'nss') {
      const sha256 = await kms.call('re-encrypt', { cipher_text: pair.body.private_key_cipher_text, destination_key_id: rsaKey, destination_encryption_algorithm: 'RSAES_OAEP_SHA_256' });
      expectKmsError(sha256, 400, 'KMS.2106');
      expect(sha256.body.error.error_msg).toContain('destination_encryption_algorithm');
      expect(await auditRecord(sha256)).not.toHaveProperty('blob');
    }
  });

  it('the audit record names the RSA key as key_id and the source\'s algorithm, never the plaintext', async () => {
    const data = await kms.call('encrypt-data', { key_id: source, plain_text: 'audited move to RSA' });
    const moved = await kms.call('re-encrypt', { cipher_text: data.body.cipher_text, destination_key_id: rsaKey, destination_encryption_algorithm: oaep });
    expect(moved.status).toBe(200);
    const record = await auditRecord(moved);
    expect(record).toMatchObject({ action: 're-encrypt', key_id: rsaKey, source_key_id: source, result: 'OK' });
    expect(record).not.toHaveProperty('algorithm');
    expect(JSON.stringify(record)).not.toContain('audited move to RSA');
    // Never the RSA ciphertext a client could replay either.
    expect(JSON.stringify(record)).not.toContain(moved.body.cipher_text.slice(0, 24));
  });
});
