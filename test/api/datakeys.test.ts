import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { withTrailerRecomputed } from '../helpers/blob';
import { testModuleKind } from '../helpers/test-module';
import { createKeyId, expectKmsError } from '../helpers/client';
import { useTestService, type TestService } from '../helpers/service';
import { KmsError } from '../../src/errors';
import { ckrName, ckrOf } from '../../src/hsm/ckr';
import { decodeBlob } from '../../src/kms/blob-codec';

// The encrypt-datakey example of the API reference: a 64-byte DEK, its SHA-256, lower-case hex.
const REFERENCE_DEK =
  '7549d9aea901767bf3c0b3e14b10722eaf6f59053bbd82045d04e075e809a0fe6ccab48f8e5efe74e4b18ff0512525e527b10331100f357bf42125d8d5ced94f';
const REFERENCE_DIGEST = 'fbc8ac72b0785ca7fe33eb6776ce3990b11e32b299d9c0a9ee0305fb9540f797';
// The decrypt-datakey example's cipher_text: a blob from Huawei's own KMS, which no other KMS can open.
const HUAWEI_BLOB =
  '020098005273E14E6E8E95F5463BECDC27E80AF820B9FC086CB47861899149F67CF07DAFF2810B7D27BDF19AB7632488E0926A48DB2FC85BEA905119411B46244C5E6B8036C60A0B0B4842FFE6994518E89C19B1C1D688D9043BCD6053EA7BA0652642CE59F2543C80669139F4F71ABB9BD9A24330643034363662302D653732372D346439632D623335642D66383462623437346133376600000000D34457984F9730D57F228C210FD22CA6017913964B21D4ECE45D81092BB9112E';

const sha256Hex = (hex: string): string => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex').toUpperCase();

let keyId: string;

const t = useTestService();
const kms = t.client('project-a');

beforeAll(async () => {
  keyId = await createKeyId(kms, 'datakeys');
});

describe('create-datakey → decrypt-datakey', () => {
  it('returns a 256-bit key by default, upper-case hex, that decrypts to the same key and digest', async () => {
    const created = await kms.call('create-datakey', { key_id: keyId });
    expect(created.status).toBe(200);
    expect(created.body.key_id).toBe(keyId);
    expect(created.body.plain_text).toMatch(/^[0-9A-F]{64}$/);
    expect(created.body.cipher_text).toMatch(/^[0-9A-F]+$/);

    const opened = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.status).toBe(200);
    expect(opened.body).toEqual({
      data_key: created.body.plain_text,
      datakey_length: '32',
      datakey_dgst: sha256Hex(created.body.plain_text),
    });
  });

  it.each([
    [{ datakey_length: '512' }, 64],
    [{ datakey_length: '8' }, 1],
    [{ datakey_length: '8192' }, 1024],
    [{ key_spec: 'AES_128' }, 16],
    [{ key_spec: 'AES_256' }, 32],
    [{ key_spec: 'AES_128', datakey_length: '64' }, 8], // datakey_length wins
  ])('honours %j with a %i-byte key', async (fields, bytes) => {
    const created = await kms.call('create-datakey', { key_id: keyId, ...fields });
    expect(created.status).toBe(200);
    expect(created.body.plain_text).toHaveLength(bytes * 2);
    const opened = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: String(bytes) });
    expect(opened.body.data_key).toBe(created.body.plain_text);
  });

  it('makes a different key and ciphertext every time', async () => {
    const first = await kms.call('create-datakey', { key_id: keyId });
    const second = await kms.call('create-datakey', { key_id: keyId });
    expect(first.body.plain_text).not.toBe(second.body.plain_text);
    expect(first.body.cipher_text).not.toBe(second.body.cipher_text);
  });

  it('accepts lower-case hex cipher_text', async () => {
    const created = await kms.call('create-datakey', { key_id: keyId });
    const opened = await kms.call('decrypt-datakey', {
      key_id: keyId,
      cipher_text: created.body.cipher_text.toLowerCase(),
      datakey_cipher_length: '32',
    });
    expect(opened.body.data_key).toBe(created.body.plain_text);
  });

  it.each([
    [{ datakey_length: '4' }, 'KMS.1901'],
    [{ datakey_length: '8200' }, 'KMS.1901'],
    [{ datakey_length: '0' }, 'KMS.1901'],
    [{ datakey_length: '12' }, 'KMS.1903'],
    [{ datakey_length: 'abc' }, 'KMS.1901'],
    [{ key_spec: 'SM4' }, 'KMS.1902'],
  ])('refuses %j with %s', async (fields, code) => {
    expectKmsError(await kms.call('create-datakey', { key_id: keyId, ...fields }), 400, code);
  });
});

describe('create-datakey-without-plaintext', () => {
  it('returns only the ciphertext, which decrypts to a key of the requested length', async () => {
    const created = await kms.call('create-datakey-without-plaintext', { key_id: keyId, datakey_length: '512' });
    expect(created.status).toBe(200);
    expect(Object.keys(created.body).sort()).toEqual(['cipher_text', 'key_id']);
    const opened = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '64' });
    expect(opened.status).toBe(200);
    expect(opened.body.data_key).toMatch(/^[0-9A-F]{128}$/);
    expect(opened.body.datakey_dgst).toBe(sha256Hex(opened.body.data_key));
  });
});

describe('encrypt-datakey', () => {
  it('accepts the API reference example (lower-case DEK ‖ SHA-256, with AAD) and decrypts it back', async () => {
    const sealed = await kms.call('encrypt-datakey', {
      key_id: keyId,
      plain_text: REFERENCE_DEK + REFERENCE_DIGEST,
      datakey_plain_length: '64',
      additional_authenticated_data: '123aad',
    });
    expect(sealed.status).toBe(200);
    expect(sealed.body.key_id).toBe(keyId);
    expect(sealed.body.datakey_length).toBe('64');
    expect(sealed.body.cipher_text).toMatch(/^[0-9A-F]+$/);

    const opened = await kms.call('decrypt-datakey', {
      key_id: keyId,
      cipher_text: sealed.body.cipher_text,
      datakey_cipher_length: '64',
      additional_authenticated_data: '123aad',
    });
    expect(opened.status).toBe(200);
    expect(opened.body.data_key).toBe(REFERENCE_DEK.toUpperCase());
    expect(opened.body.datakey_dgst).toBe(REFERENCE_DIGEST.toUpperCase());
  });

  it('refuses a digest that does not match the key (KMS.2103)', async () => {
    const wrongDigest = REFERENCE_DIGEST.slice(0, -2) + (REFERENCE_DIGEST.endsWith('00') ? '01' : '00');
    expectKmsError(
      await kms.call('encrypt-datakey', { key_id: keyId, plain_text: REFERENCE_DEK + wrongDigest, datakey_plain_length: '64' }),
      400,
      'KMS.2103',
    );
  });

  it('refuses a plain_text whose length does not match datakey_plain_length (KMS.2104)', async () => {
    expectKmsError(
      await kms.call('encrypt-datakey', { key_id: keyId, plain_text: REFERENCE_DEK + REFERENCE_DIGEST, datakey_plain_length: '32' }),
      400,
      'KMS.2104',
    );
    expectKmsError(
      await kms.call('encrypt-datakey', { key_id: keyId, plain_text: REFERENCE_DEK, datakey_plain_length: '64' }),
      400,
      'KMS.2104',
    );
  });

  it.each([
    [{ plain_text: 'xyz' }, 'KMS.2101'],
    [{ plain_text: 'abc' }, 'KMS.2101'], // odd number of hex digits
    [{ datakey_plain_length: '0' }, 'KMS.0308'],
    [{ datakey_plain_length: '1025' }, 'KMS.0308'],
  ])('refuses %j with %s', async (fields, code) => {
    const body = { key_id: keyId, plain_text: REFERENCE_DEK + REFERENCE_DIGEST, datakey_plain_length: '64', ...fields };
    expectKmsError(await kms.call('encrypt-datakey', body), 400, code);
  });
});

describe('decrypt-datakey refuses what it cannot trust', () => {
  let blob: string;
  beforeAll(async () => {
    blob = (await kms.call('create-datakey', { key_id: keyId })).body.cipher_text;
  });

  it('refuses a blob from Huawei Cloud KMS, the reference example (KMS.2201)', async () => {
    const otherKey = await createKeyId(kms, 'reference-blob');
    expectKmsError(await kms.call('decrypt-datakey', { key_id: otherKey, cipher_text: HUAWEI_BLOB, datakey_cipher_length: '64' }), 400, 'KMS.2201');
  });

  it('refuses a datakey_cipher_length that does not match the blob (KMS.2204)', async () => {
    expectKmsError(await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: blob, datakey_cipher_length: '16' }), 400, 'KMS.2204');
  });

  it('refuses the blob under another key id, even of the same project (KMS.2201)', async () => {
    const otherKey = await createKeyId(kms, 'other-key');
    expectKmsError(await kms.call('decrypt-datakey', { key_id: otherKey, cipher_text: blob, datakey_cipher_length: '32' }), 400, 'KMS.2201');
  });

  it('rejects every single-byte change of a blob', async () => {
    // The SHA-256 trailer refuses these before the HSM sees them; the next block recomputes it.
    const bytes = Buffer.from(blob, 'hex');
    const failures: Array<{ offset: number; status: number; code: string }> = [];
    for (let offset = 0; offset < bytes.length; offset++) {
      const tampered = Buffer.from(bytes);
      tampered[offset] = tampered[offset]! ^ 0x01;
      const response = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: tampered.toString('hex'), datakey_cipher_length: '32' });
      const code = response.body?.error?.error_code;
      if (response.status !== 400 || code !== 'KMS.2201') failures.push({ offset, status: response.status, code });
    }
    expect(failures).toEqual([]);
  });

  it.each([
    ['truncated', (hex: string) => hex.slice(0, -2)],
    ['extended', (hex: string) => `${hex}00`],
    ['odd length', (hex: string) => hex.slice(0, -1)],
    ['too short', (hex: string) => hex.slice(0, 40)],
  ])('refuses a %s blob (KMS.2201)', async (_name, change) => {
    expectKmsError(await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: change(blob), datakey_cipher_length: '32' }), 400, 'KMS.2201');
  });
});

describe('decrypt-datakey: a change with the SHA-256 trailer recomputed is refused by GCM, in the HSM', () => {
  // The trailer is a checksum anyone can recompute, so the codec accepts these blobs: what refuses
  // them must be the HSM's AES-GCM authentication (the tag covers the ciphertext under the IV and
  // the additional data that names key id, material version, project and context). Each case
  // asserts the codec accepted the blob, the HSM was asked, and its C_Decrypt refused.
  let decrypt: jest.SpiedFunction<TestService['service']['hsm']['symmetric']['decrypt']>;
  beforeEach(() => {
    decrypt = jest.spyOn(t.service.hsm.symmetric, 'decrypt');
  });
  afterEach(() => decrypt.mockRestore());

  /** How one tampered blob was refused, in terms a failure message can show. */
  async function refusal(key: string, tampered: Buffer): Promise<{ codec: string; status: number; code: string; hsmCalls: number; hsm: string }> {
    let codec = 'accepted';
    try {
      decodeBlob(tampered);
    } catch (error) {
      codec = `refused: ${((error as KmsError).cause as Error).message}`;
    }
    decrypt.mockClear();
    const response = await kms.call('decrypt-datakey', { key_id: key, cipher_text: tampered.toString('hex'), datakey_cipher_length: '32' });
    const outcome = decrypt.mock.results[0]?.value as Promise<Buffer> | undefined;
    const error = outcome ? await outcome.then(() => undefined, (thrown: unknown) => thrown) : undefined;
    const cause = error instanceof KmsError ? error.cause : undefined;
    const hsm = !outcome
      ? 'not asked'
      : !(error instanceof KmsError)
        ? `ended otherwise: ${error === undefined ? 'decrypted' : String(error)}`
        : ckrOf(cause) === undefined
          ? `${error.code} from the service's own checks`
          : `${error.code}: ${ckrName(cause)} from the module`;
    return { codec, status: response.status, code: response.body?.error?.error_code, hsmCalls: decrypt.mock.calls.length, hsm };
  }

  // What C_Decrypt answers for a GCM tag that does not verify (see src/hsm/profiles.ts): SoftHSM
  // CKR_GENERAL_ERROR, NSS's softoken CKR_ENCRYPTED_DATA_INVALID.
  // SoftHSM's answer; NSS and the FIPS-style shim answer what the standard says.
  const badTag = testModuleKind() === 'softhsm' ? 'CKR_GENERAL_ERROR (0x5)' : 'CKR_ENCRYPTED_DATA_INVALID (0x40)';
  // Only C_Decrypt's answer becomes KMS.2201 with the module's code as its cause (Pkcs11Hsm.decrypt).
  const refusedByGcm = { codec: 'accepted', status: 400, code: 'KMS.2201', hsmCalls: 1, hsm: `KMS.2201: ${badTag} from the module` };

  it.each([
    ['IV', 4, 16],
    ['ciphertext', 16, 48],
    ['GCM tag', 48, 64],
  ])('refuses every byte of the %s changed (KMS.2201)', async (_field, from, to) => {
    const blob = Buffer.from((await kms.call('create-datakey', { key_id: keyId })).body.cipher_text, 'hex');
    // The untampered blob takes the same path and opens.
    expect((await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: blob.toString('hex'), datakey_cipher_length: '32' })).status).toBe(200);
    const failures: unknown[] = [];
    for (let offset = from; offset < to; offset++) {
      const tampered = Buffer.from(blob);
      tampered[offset] = tampered[offset]! ^ 0x01;
      const seen = await refusal(keyId, withTrailerRecomputed(tampered));
      if (JSON.stringify(seen) !== JSON.stringify(refusedByGcm)) failures.push({ offset, ...seen });
    }
    expect(failures).toEqual([]);
  });

  it('refuses the key material version changed to another version the key has (KMS.2201)', async () => {
    // A key with material versions 0 and 1, as a rotation leaves it (behind the service's back: the
    // API has no rotation yet); new data keys are sealed under version 1.
    const key = await createKeyId(kms, 'two-material-versions');
    await t.service.hsm.generateKey({ keyId: key, version: 1 });
    const db = new Database(t.config.databasePath);
    try {
      db.prepare('INSERT INTO key_materials (key_id, version, created_at) VALUES (?, 1, ?)').run(key, Date.now());
      db.prepare('UPDATE keys SET material_version = 1 WHERE key_id = ?').run(key);
    } finally {
      db.close();
    }
    const created = await kms.call('create-datakey', { key_id: key });
    const blob = Buffer.from(created.body.cipher_text, 'hex');
    const versionAt = blob.readUInt16LE(2);
    expect(blob.readUInt32LE(versionAt)).toBe(1);
    const opened = await kms.call('decrypt-datakey', { key_id: key, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.body.data_key).toBe(created.body.plain_text);

    // 1 → 0: a version the key has, so the HSM is asked (under version 0's material) and GCM refuses.
    const older = Buffer.from(blob);
    older.writeUInt32LE(0, versionAt);
    expect(await refusal(key, withTrailerRecomputed(older))).toEqual(refusedByGcm);
    // Any other change names a version the key does not have: refused before the HSM is asked.
    for (const [offset, bit] of [[0, 0x02], [1, 0x01], [2, 0x01], [3, 0x80]] as const) {
      const other = Buffer.from(blob);
      other[versionAt + offset] = other[versionAt + offset]! ^ bit;
      expect(await refusal(key, withTrailerRecomputed(other))).toEqual({ ...refusedByGcm, hsmCalls: 0, hsm: 'not asked' });
    }
  });
});

describe('binding: what was given at encryption must be given at decryption', () => {
  const context = { bucket: 'photos', object: 'cat.jpg' };

  it('opens with the same encryption_context, in any key order', async () => {
    const created = await kms.call('create-datakey', { key_id: keyId, encryption_context: context });
    const opened = await kms.call('decrypt-datakey', {
      key_id: keyId,
      cipher_text: created.body.cipher_text,
      datakey_cipher_length: '32',
      encryption_context: { object: 'cat.jpg', bucket: 'photos' },
    });
    expect(opened.status).toBe(200);
    expect(opened.body.data_key).toBe(created.body.plain_text);
  });

  it.each([
    ['no context', {}],
    ['another value', { encryption_context: { bucket: 'photos', object: 'dog.jpg' } }],
    ['an extra pair', { encryption_context: { ...context, extra: '1' } }],
    ['the context as AAD instead', { additional_authenticated_data: JSON.stringify(context) }],
  ])('refuses %s with KMS.2201', async (_name, binding) => {
    const created = await kms.call('create-datakey', { key_id: keyId, encryption_context: context });
    const response = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32', ...binding });
    expectKmsError(response, 400, 'KMS.2201');
  });

  it('binds additional_authenticated_data exactly', async () => {
    const created = await kms.call('create-datakey', { key_id: keyId, additional_authenticated_data: 'order-42' });
    const decrypt = (aad?: string) =>
      kms.call('decrypt-datakey', {
        key_id: keyId,
        cipher_text: created.body.cipher_text,
        datakey_cipher_length: '32',
        ...(aad === undefined ? {} : { additional_authenticated_data: aad }),
      });
    expect((await decrypt('order-42')).status).toBe(200);
    expectKmsError(await decrypt('order-43'), 400, 'KMS.2201');
    expectKmsError(await decrypt(), 400, 'KMS.2201');
  });

  it('treats an empty context like no context', async () => {
    const created = await kms.call('create-datakey', { key_id: keyId, encryption_context: {} });
    const opened = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.status).toBe(200);
  });

  it.each([
    ['a non-string value', { encryption_context: { n: 1 } }, 'KMS.0208'],
    ['an array', { encryption_context: ['a'] }, 'KMS.0208'],
    ['a context over 8192 characters', { encryption_context: { big: 'x'.repeat(8200) } }, 'KMS.0208'],
    ['AAD over 128 bytes', { additional_authenticated_data: 'é'.repeat(65) }, 'KMS.0308'],
  ])('refuses %s', async (_name, fields, code) => {
    expectKmsError(await kms.call('create-datakey', { key_id: keyId, ...fields }), 400, code);
  });
});

describe('key states and projects', () => {
  it('refuses a disabled key (KMS.0209) and serves it again once enabled', async () => {
    const key = await createKeyId(kms, 'to-disable');
    const blob = (await kms.call('create-datakey', { key_id: key })).body.cipher_text;
    await kms.call('disable-key', { key_id: key });
    expectKmsError(await kms.call('create-datakey', { key_id: key }), 400, 'KMS.0209');
    expectKmsError(await kms.call('decrypt-datakey', { key_id: key, cipher_text: blob, datakey_cipher_length: '32' }), 400, 'KMS.0209');
    await kms.call('enable-key', { key_id: key });
    expect((await kms.call('decrypt-datakey', { key_id: key, cipher_text: blob, datakey_cipher_length: '32' })).status).toBe(200);
  });

  it('refuses a key pending deletion (KMS.0210), for every data key operation', async () => {
    const key = await createKeyId(kms, 'to-delete');
    const blob = (await kms.call('create-datakey', { key_id: key })).body.cipher_text;
    expect((await kms.call('schedule-key-deletion', { key_id: key, pending_days: '7' })).status).toBe(200);
    expectKmsError(await kms.call('create-datakey', { key_id: key }), 400, 'KMS.0210');
    expectKmsError(await kms.call('create-datakey-without-plaintext', { key_id: key }), 400, 'KMS.0210');
    expectKmsError(
      await kms.call('encrypt-datakey', { key_id: key, plain_text: REFERENCE_DEK + REFERENCE_DIGEST, datakey_plain_length: '64' }),
      400,
      'KMS.0210',
    );
    expectKmsError(await kms.call('decrypt-datakey', { key_id: key, cipher_text: blob, datakey_cipher_length: '32' }), 400, 'KMS.0210');
  });

  it("hides a project's keys and blobs from another project (KMS.0207)", async () => {
    const other = t.client('project-b');
    const blob = (await kms.call('create-datakey', { key_id: keyId })).body.cipher_text;
    expectKmsError(await other.call('create-datakey', { key_id: keyId }), 404, 'KMS.0207');
    expectKmsError(await other.call('decrypt-datakey', { key_id: keyId, cipher_text: blob, datakey_cipher_length: '32' }), 404, 'KMS.0207');
  });

  it('answers an unknown key with KMS.0207', async () => {
    expectKmsError(await kms.call('create-datakey', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f' }), 404, 'KMS.0207');
  });
});

describe('secrets stay out of the logs', () => {
  it('never logs a data key, in plaintext or as a digest', async () => {
    const created = await kms.call('create-datakey', { key_id: keyId });
    await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' });
    await kms.call('encrypt-datakey', { key_id: keyId, plain_text: REFERENCE_DEK + REFERENCE_DIGEST, datakey_plain_length: '64' });
    const logs = t.logs.text.toUpperCase();
    expect(logs.length).toBeGreaterThan(0);
    expect(logs).not.toContain(created.body.plain_text);
    expect(logs).not.toContain(REFERENCE_DEK.toUpperCase().slice(0, 32));
    expect(logs).not.toContain(REFERENCE_DIGEST.toUpperCase().slice(0, 32));
  });
});
