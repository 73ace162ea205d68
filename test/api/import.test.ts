import { constants, createPublicKey, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { expectKmsError, type KmsClient } from '../helpers/client';
import { PROTECTED, readFlags, readSecretPart } from '../helpers/key-attributes';
import * as pkcs11 from 'pkcs11js';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';
import { testModuleKind } from '../helpers/test-module';
import { KeyMaintenance } from '../../src/kms/maintenance';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store';

/**
 * Bring your own key through the API: an external key (pending import, state 5), the parameters
 * for its import (an RSA-2048 wrapping public key made in the HSM, an import token the HSM
 * sealed), material made and wrapped here with Node's crypto, imported, used for data keys; every
 * refusal with its code; the material's expiry by the service's sweep, exactly once; deletion and
 * re-import of the same material only.
 */

let side: SideChannel;

const t = useTestService();
const kms = t.client('project-a');

beforeAll(async () => {
  side = new SideChannel(t.config.hsm);
});

/** SoftHSM 2.6 (and the FIPS-style shim over it) unwraps OAEP with SHA-1 only; NSS's softoken takes SHA-256, the SDK's. */
const ALGORITHM = testModuleKind() === 'nss' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
const OTHER = ALGORITHM === 'RSAES_OAEP_SHA_1' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
const HASH: Readonly<Record<string, string>> = { RSAES_OAEP_SHA_256: 'sha256', RSAES_OAEP_SHA_1: 'sha1' };

let aliases = 0;
async function externalKey(client: KmsClient = kms): Promise<string> {
  const created = await client.call('create-key', { key_alias: `byok-${++aliases}`, origin: 'external' });
  expect(created.status).toBe(200);
  return created.body.key_info.key_id as string;
}

interface Parameters {
  readonly token: string;
  readonly publicKey: KeyObject;
  readonly expiration: number;
}

async function parameters(keyId: string, algorithm = ALGORITHM): Promise<Parameters> {
  const answer = await kms.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: algorithm });
  expect(answer.status).toBe(200);
  return {
    token: answer.body.import_token,
    publicKey: createPublicKey({ key: Buffer.from(answer.body.public_key, 'base64'), format: 'der', type: 'spki' }),
    expiration: answer.body.expiration_time,
  };
}

function wrap(publicKey: KeyObject, material: Buffer, algorithm = ALGORITHM): string {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: HASH[algorithm] }, material).toString('base64');
}

async function importMaterial(keyId: string, material: Buffer, extra: Record<string, unknown> = {}) {
  const { token, publicKey } = await parameters(keyId);
  return kms.call('import-key-material', { key_id: keyId, import_token: token, encrypted_key_material: wrap(publicKey, material), ...extra });
}

async function describe_(keyId: string) {
  const described = await kms.call('describe-key', { key_id: keyId });
  expect(described.status).toBe(200);
  return described.body.key_info;
}

async function dataKey(keyId: string): Promise<{ plain: string; cipher: string }> {
  const made = await kms.call('create-datakey', { key_id: keyId, datakey_length: '256' });
  expect(made.status).toBe(200);
  return { plain: made.body.plain_text, cipher: made.body.cipher_text };
}

function decryptDataKey(keyId: string, cipher: string) {
  return kms.call('decrypt-datakey', { key_id: keyId, cipher_text: cipher, datakey_cipher_length: '32' });
}

describe('an external key', () => {
  it('is pending import (state 5) with origin external, and every cryptographic operation on it is refused', async () => {
    const keyId = await externalKey();
    expect(await describe_(keyId)).toMatchObject({ key_state: '5', origin: 'external', key_spec: 'AES_256', expiration_time: '' });
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expectKmsError(await kms.call('create-datakey', { key_id: keyId, datakey_length: '256' }), 400, 'KMS.1301');
    expectKmsError(await kms.call('encrypt-datakey', { key_id: keyId, plain_text: 'ab'.repeat(32), datakey_plain_length: '32' }), 400, 'KMS.1301');
    expectKmsError(await kms.call('encrypt-data', { key_id: keyId, plain_text: 'hello' }), 400, 'KMS.1301');
    expectKmsError(await kms.call('enable-key-rotation', { key_id: keyId }), 400, 'KMS.0312');
    expectKmsError(await kms.call('import-key-material', { key_id: keyId, import_token: 'A'.repeat(212), encrypted_key_material: 'A'.repeat(344) }), 400, 'KMS.2605');
  });

  it('is AES_256, or a key pair whose private key the HSM imports (import-key-pairs.test.ts); HMAC keys cannot be external, and another origin is refused', async () => {
    expectKmsError(await kms.call('create-key', { key_alias: 'byok-hmac', origin: 'external', key_spec: 'HMAC_256' }), 400, 'KMS.0308');
    expectKmsError(await kms.call('create-key', { key_alias: 'byok-other', origin: 'elsewhere' }), 400, 'KMS.0308');
  });

  it('goes back to pending import when its deletion is cancelled before any import', async () => {
    const keyId = await externalKey();
    expect((await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
    const cancelled = await kms.call('cancel-key-deletion', { key_id: keyId });
    expect(cancelled.body).toEqual({ key_id: keyId, key_state: '5' });
  });

  it('with its material imported, is left disabled when its deletion is cancelled, named by its id or by an alias', async () => {
    for (const byAlias of [false, true]) {
      const keyId = await externalKey();
      expect((await importMaterial(keyId, randomBytes(32))).status).toBe(200);
      const alias = `alias/byok-cancel-${aliases}`;
      if (byAlias) expect((await kms.call('aliases', { key_id: keyId, alias })).status).toBe(201);
      const named = byAlias ? alias : keyId;
      expect((await kms.call('schedule-key-deletion', { key_id: named, pending_days: '7' })).status).toBe(200);
      const cancelled = await kms.call('cancel-key-deletion', { key_id: named });
      expect(cancelled.body).toEqual({ key_id: keyId, key_state: '3' });
    }
  });
});

describe('get-parameters-for-import', () => {
  it('answers a base64 import token, its expiry 24 hours ahead in seconds, and an RSA-2048 wrapping public key (DER SPKI) made in the HSM', async () => {
    const keyId = await externalKey();
    const answer = await kms.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: ALGORITHM });
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body).sort()).toEqual(['expiration_time', 'import_token', 'key_id', 'public_key']);
    expect(answer.body.key_id).toBe(keyId);
    // Within the SDK's bounds for import-key-material's import_token.
    expect(answer.body.import_token).toMatch(/^[0-9a-zA-Z+/=]{200,6144}$/);
    expect(answer.body.expiration_time).toBe(Math.floor(t.clock.now / 1000) + 86_400);
    const publicKey = createPublicKey({ key: Buffer.from(answer.body.public_key, 'base64'), format: 'der', type: 'spki' });
    expect(publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    // One RSA-2048 block is 344 base64 characters: within the SDK's 344 to 360 for encrypted_key_material.
    expect(wrap(publicKey, randomBytes(32))).toHaveLength(344);
  });

  it('refuses SM2_ENCRYPT, an algorithm this HSM cannot unwrap with, a key made in the HSM (KMS.0309) and one not pending import (KMS.0310)', async () => {
    const keyId = await externalKey();
    expectKmsError(await kms.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: 'SM2_ENCRYPT' }), 400, 'KMS.0308');
    expectKmsError(await kms.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: 'RSAES_PKCS1_V1_5' }), 400, 'KMS.0308');
    if (!t.service.hsm.capabilities.wrappingAlgorithms.has(OTHER)) {
      expectKmsError(await kms.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: OTHER }), 400, 'KMS.0308');
    }
    const generated = await kms.call('create-key', { key_alias: `byok-kms-${++aliases}` });
    expectKmsError(await kms.call('get-parameters-for-import', { key_id: generated.body.key_info.key_id, wrapping_algorithm: ALGORITHM }), 400, 'KMS.0309');
    expect((await importMaterial(keyId, randomBytes(32))).status).toBe(200);
    expectKmsError(await kms.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: ALGORITHM }), 400, 'KMS.0310');
  });
});

describe('import-key-material', () => {
  it('imports material wrapped with Node\'s crypto: the key is enabled, data keys are made and decrypted, the object is sensitive and never extractable', async () => {
    const keyId = await externalKey();
    const imported = await importMaterial(keyId, randomBytes(32));
    expect(imported.status).toBe(200);
    expect(imported.body).toEqual({});
    expect(await describe_(keyId)).toMatchObject({ key_state: '2', origin: 'external', expiration_time: '' });
    const { plain, cipher } = await dataKey(keyId);
    const decrypted = await decryptDataKey(keyId, cipher);
    expect(decrypted.status).toBe(200);
    expect(decrypted.body.data_key).toBe(plain);
    const ref = { keyId, version: 0 };
    expect(readFlags(side, ref, 'secret')).toMatchObject({ token: true, private: true, protection: expect.objectContaining({ sensitive: PROTECTED.sensitive, extractable: PROTECTED.extractable }) });
    expect(readSecretPart(side, ref, 'secret', pkcs11.CKA_VALUE)).toBe(pkcs11.CKR_ATTRIBUTE_SENSITIVE);
    // Imported material cannot be made anew: no rotation, on demand or scheduled (KMS.0312, as Huawei answers).
    expectKmsError(await kms.call('rotate-on-demand', { key_id: keyId }), 400, 'KMS.0312');
    expectKmsError(await kms.call('enable-key-rotation', { key_id: keyId }), 400, 'KMS.0312');
    // The wrapping key pair has served: destroyed, so the token holds only the key's object.
    expect(t.service.hsm.listKeys().filter((other) => other.keyId === keyId)).toEqual([ref]);
  });

  it('refuses a tampered token, a token of another key, an expired token, and one a newer request replaced', async () => {
    const keyId = await externalKey();
    const material = randomBytes(32);
    const { token, publicKey } = await parameters(keyId);
    const body = { key_id: keyId, import_token: token, encrypted_key_material: wrap(publicKey, material) };
    const bytes = Buffer.from(token, 'base64');
    bytes[40]! ^= 0x01;
    expectKmsError(await kms.call('import-key-material', { ...body, import_token: bytes.toString('base64') }), 400, 'KMS.2605');
    expectKmsError(await kms.call('import-key-material', { ...body, import_token: token.slice(0, 200) }), 400, 'KMS.2605');
    const other = await externalKey();
    const foreign = await parameters(other);
    expectKmsError(await kms.call('import-key-material', { ...body, import_token: foreign.token }), 400, 'KMS.2603');
    // A newer request's wrapping key replaced the one this token names.
    const newer = await parameters(keyId);
    expectKmsError(await kms.call('import-key-material', body), 400, 'KMS.2605');
    const fresh = { key_id: keyId, import_token: newer.token, encrypted_key_material: wrap(newer.publicKey, material) };
    t.clock.now += 86_400_000 + 1000;
    try {
      expectKmsError(await kms.call('import-key-material', fresh), 400, 'KMS.2601');
    } finally {
      t.clock.now -= 86_400_000 + 1000;
    }
    expect((await kms.call('import-key-material', fresh)).status).toBe(200);
  });

  it('refuses material wrapped with another hash (KMS.0308), of the wrong length (KMS.2604: 32 bytes for AES_256), asymmetric private keys, a past expiration_time (KMS.2602), a key not pending import (KMS.0310)', async () => {
    const keyId = await externalKey();
    const { token, publicKey } = await parameters(keyId);
    const call = (material: string, extra: Record<string, unknown> = {}) => kms.call('import-key-material', { key_id: keyId, import_token: token, encrypted_key_material: material, ...extra });
    expectKmsError(await call(wrap(publicKey, randomBytes(32), OTHER)), 400, 'KMS.0308');
    for (const length of [0, 1, 8, 12, 16, 31, 33, 64]) expectKmsError(await call(wrap(publicKey, randomBytes(length))), 400, 'KMS.2604');
    // Within the SDK's pattern, but no RSA-2048 block (261 bytes).
    expectKmsError(await call(randomBytes(261).toString('base64')), 400, 'KMS.0308');
    // A block whose number is not below the wrapping key's modulus (as material wrapped for another
    // key now and then is): the caller's too, on every module (NSS answers CKR_ARGUMENTS_BAD).
    expectKmsError(await call(Buffer.alloc(256, 0xff).toString('base64')), 400, 'KMS.0308');
    expectKmsError(await call(wrap(publicKey, randomBytes(32)), { encrypted_privatekey: randomBytes(300).toString('base64') }), 400, 'KMS.0308');
    expectKmsError(await call(wrap(publicKey, randomBytes(32)), { expiration_time: Math.floor(t.clock.now / 1000) - 1 }), 400, 'KMS.2602');
    expectKmsError(await call(wrap(publicKey, randomBytes(32)), { expiration_time: Math.floor(t.clock.now / 1000) }), 400, 'KMS.2602');
    // Nothing was written to the token by any of them.
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expect((await describe_(keyId)).key_state).toBe('5');
    expect((await call(wrap(publicKey, randomBytes(32)))).status).toBe(200);
    expectKmsError(await call(wrap(publicKey, randomBytes(32))), 400, 'KMS.0310');
    const generated = await kms.call('create-key', { key_alias: `byok-kms-${++aliases}` });
    expectKmsError(await kms.call('import-key-material', { key_id: generated.body.key_info.key_id, import_token: token, encrypted_key_material: wrap(publicKey, randomBytes(32)) }), 400, 'KMS.0309');
  });
});

describe('two imports of one key at once', () => {
  it('exactly one succeeds; the other is refused (KMS.0310 once the first is done, or 503 KMS.0104 while it runs), and the key holds the winner\'s material', async () => {
    const keyId = await externalKey();
    const { token, publicKey } = await parameters(keyId);
    const materials = [randomBytes(32), randomBytes(32)];
    const answers = await Promise.all(materials.map((material) => kms.call('import-key-material', { key_id: keyId, import_token: token, encrypted_key_material: wrap(publicKey, material) })));
    expect(answers.filter((answer) => answer.status === 200)).toHaveLength(1);
    const refused = answers.find((answer) => answer.status !== 200)!;
    expect(['KMS.0310', 'KMS.0104', 'KMS.2605']).toContain(refused.body.error_code);
    expect((await describe_(keyId)).key_state).toBe('2');
    // The winner's material is the key's: deleted, it alone comes back.
    const winner = materials[answers.findIndex((answer) => answer.status === 200)]!;
    const loser = materials[answers.findIndex((answer) => answer.status !== 200)]!;
    expect((await kms.call('delete-imported-key-material', { key_id: keyId })).status).toBe(200);
    expectKmsError(await importMaterial(keyId, loser), 400, 'KMS.2606');
    expect((await importMaterial(keyId, winner)).status).toBe(200);
  });
});

describe('delete-imported-key-material and re-import', () => {
  it('deletion destroys the material (state 5, data keys refused); only the same material comes back, and old data keys decrypt again', async () => {
    const keyId = await externalKey();
    const material = randomBytes(32);
    expect((await importMaterial(keyId, material)).status).toBe(200);
    const { plain, cipher } = await dataKey(keyId);
    const deleted = await kms.call('delete-imported-key-material', { key_id: keyId });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({});
    expect((await describe_(keyId)).key_state).toBe('5');
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expectKmsError(await decryptDataKey(keyId, cipher), 400, 'KMS.1301');
    expectKmsError(await kms.call('delete-imported-key-material', { key_id: keyId }), 400, 'KMS.2701');
    expectKmsError(await importMaterial(keyId, randomBytes(32)), 400, 'KMS.2606');
    expect((await describe_(keyId)).key_state).toBe('5');
    expect((await importMaterial(keyId, material)).status).toBe(200);
    const decrypted = await decryptDataKey(keyId, cipher);
    expect(decrypted.status).toBe(200);
    expect(decrypted.body.data_key).toBe(plain);
  });

  it('refuses a key made in the HSM (KMS.0309)', async () => {
    const generated = await kms.call('create-key', { key_alias: `byok-kms-${++aliases}` });
    expectKmsError(await kms.call('delete-imported-key-material', { key_id: generated.body.key_info.key_id }), 400, 'KMS.0309');
  });
});

describe('expiration_time', () => {
  it('shows in describe-key (ms); when it passes, the sweep deletes the material exactly once (two sweeps at once) and the key is pending import', async () => {
    const keyId = await externalKey();
    const material = randomBytes(32);
    const expiresAt = Math.floor(t.clock.now / 1000) + 3600;
    expect((await importMaterial(keyId, material, { expiration_time: expiresAt })).status).toBe(200);
    expect((await describe_(keyId)).expiration_time).toBe(String(expiresAt * 1000));
    const { plain, cipher } = await dataKey(keyId);
    const logger = pino({ level: 'silent' });
    // Two sweeps as two processes run them: each on a store of its own (its own lease holder) over the one database.
    const otherStore = SqliteStore.open(t.config.databasePath);
    const sweeps = [t.service.store, otherStore].map((store) => new KeyMaintenance({ store, hsm: t.service.hsm, clock: t.clock.read, logger }));
    // Not yet: nothing happens.
    expect((await sweeps[0]!.run()).importsExpired).toBe(0);
    const realTime = t.clock.now;
    t.clock.now = expiresAt * 1000;
    const reports = await Promise.all(sweeps.map((sweep) => sweep.run()));
    // Back to the real time: signed requests are checked against the service's clock.
    t.clock.now = realTime;
    await otherStore.close();
    // The service's own sweep may have run meanwhile: at most one of all did it.
    expect(reports.reduce((sum, report) => sum + report.importsExpired, 0)).toBeLessThanOrEqual(1);
    expect(t.logs.text.split('\n').filter((line) => line.includes('imported key material expired') && line.includes(keyId))).toHaveLength(
      reports.some((report) => report.importsExpired === 1) ? 0 : 1,
    );
    expect(await describe_(keyId)).toMatchObject({ key_state: '5', expiration_time: '' });
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expectKmsError(await decryptDataKey(keyId, cipher), 400, 'KMS.1301');
    expect((await importMaterial(keyId, material)).status).toBe(200);
    expect((await decryptDataKey(keyId, cipher)).body.data_key).toBe(plain);
  });

  it('an unused wrapping key is destroyed by the sweep once its token expires', async () => {
    const keyId = await externalKey();
    await parameters(keyId);
    expect(await t.service.hsm.hasKey({ keyId, version: 0xffffffff })).toBe(true);
    const sweep = new KeyMaintenance({ store: t.service.store, hsm: t.service.hsm, clock: () => t.clock.now + 86_400_000, logger: pino({ level: 'silent' }) });
    await sweep.run();
    expect(await t.service.hsm.hasKey({ keyId, version: 0xffffffff })).toBe(false);
  });
});

describe('a restart', () => {
  it('finds the token and the database agreeing: a wrapping key is no unnamed material, a key pending import no missing material', async () => {
    const pending = await externalKey();
    const { token, publicKey } = await parameters(pending);
    const imported = await externalKey();
    const material = randomBytes(32);
    expect((await importMaterial(imported, material)).status).toBe(200);
    const { plain, cipher } = await dataKey(imported);
    const before = t.logs.lines.length;
    await t.restart();
    const after = t.logs.lines.slice(before).join('');
    expect(after).toContain('HSM ready');
    expect(after).not.toContain('no record names');
    expect(after).not.toContain('have no material in the token');
    expect((await describe_(pending)).key_state).toBe('5');
    expect((await decryptDataKey(imported, cipher)).body.data_key).toBe(plain);
    // The wrapping key made before the restart still serves its token.
    const late = await kms.call('import-key-material', { key_id: pending, import_token: token, encrypted_key_material: wrap(publicKey, randomBytes(32)) });
    expect(late.status).toBe(200);
  });
});

describe('permissions and the audit trail', () => {
  it('each operation needs its IAM action', async () => {
    const keyId = await externalKey();
    const reader = t.client('project-a', ['kms:cmk:get', 'kms:cmk:getMaterial']);
    expect((await reader.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: ALGORITHM })).status).toBe(200);
    expectKmsError(await reader.call('import-key-material', { key_id: keyId, import_token: 'A'.repeat(212), encrypted_key_material: 'A'.repeat(344) }), 403, 'KMS.0307');
    expectKmsError(await reader.call('delete-imported-key-material', { key_id: keyId }), 403, 'KMS.0307');
  });

  it('records name the key (and the wrapping algorithm), never the token or the wrapped material', async () => {
    const keyId = await externalKey();
    const answer = await kms.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: ALGORITHM });
    const publicKey = createPublicKey({ key: Buffer.from(answer.body.public_key, 'base64'), format: 'der', type: 'spki' });
    const wrapped = wrap(publicKey, randomBytes(32));
    const imported = await kms.call('import-key-material', { key_id: keyId, import_token: answer.body.import_token, encrypted_key_material: wrapped });
    expect(imported.status).toBe(200);
    const deleted = await kms.call('delete-imported-key-material', { key_id: keyId });
    const audit = readFileSync(t.config.auditLogPath, 'utf8').split('\n');
    const recordOf = (requestId: string | null): string => {
      const lines = audit.filter((line) => line.includes(`"request_id":"${requestId}"`));
      expect(lines).toHaveLength(1);
      return lines[0]!;
    };
    const records = [
      [answer, 'get-parameters-for-import', 'kms:cmk:getMaterial'],
      [imported, 'import-key-material', 'kms:cmk:importMaterial'],
      [deleted, 'delete-imported-key-material', 'kms:cmk:deleteMaterial'],
    ] as const;
    for (const [response, action, permission] of records) {
      const line = recordOf(response.headers.get('x-request-id'));
      expect(JSON.parse(line)).toMatchObject({ action, permission, key_id: keyId, result: 'OK' });
      expect(line).not.toContain(answer.body.import_token.slice(20, 60));
      expect(line).not.toContain(wrapped.slice(20, 60));
    }
    expect(JSON.parse(recordOf(answer.headers.get('x-request-id')))).toMatchObject({ algorithm: ALGORITHM });
  });
});

describe('through the official SDK\'s signer', () => {
  it('create-key external, get-parameters-for-import, import-key-material, delete-imported-key-material', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-key', { key_alias: 'sdk-byok', origin: 'external' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;
    const answer = await sdk.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: ALGORITHM });
    expect(answer.status).toBe(200);
    expect(typeof answer.body.expiration_time).toBe('number');
    const publicKey = createPublicKey({ key: Buffer.from(answer.body.public_key as string, 'base64'), format: 'der', type: 'spki' });
    const expiresAt = Math.floor(t.clock.now / 1000) + 7 * 86_400;
    const imported = await sdk.call('import-key-material', { key_id: keyId, import_token: answer.body.import_token, encrypted_key_material: wrap(publicKey, randomBytes(32)), expiration_time: expiresAt });
    expect(imported.status).toBe(200);
    expect((await sdk.call('describe-key', { key_id: keyId })).body.key_info).toMatchObject({ key_state: '2', origin: 'external', expiration_time: String(expiresAt * 1000) });
    expect((await sdk.call('delete-imported-key-material', { key_id: keyId })).status).toBe(200);
  });
});

describe('the command line: kms key import and kms key delete-material', () => {
  it('imports the 32 bytes of a local file into an external key (both operations audited in audit-cli.log, never the material), and deletes them', async () => {
    const { runCli } = await import('../helpers/cli');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const keyId = await externalKey();
    const dir = mkdtempSync(path.join(tmpdir(), 'kms-byok-'));
    const material = randomBytes(32);
    const file = path.join(dir, 'material.bin');
    writeFileSync(file, material, { mode: 0o600 });
    writeFileSync(path.join(dir, 'short.bin'), randomBytes(16));
    const short = await runCli(t, ['key', 'import', '--project', 'project-a', keyId, '--material', path.join(dir, 'short.bin')]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('32 bytes');
    const imported = await runCli(t, ['key', 'import', '--project', 'project-a', keyId, '--material', file]);
    expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(imported.stdout)).toMatchObject({ key_id: keyId, wrapping_algorithm: ALGORITHM });
    expect((await describe_(keyId)).key_state).toBe('2');
    const { plain, cipher } = await dataKey(keyId);
    const chain = readFileSync(path.join(t.dataDir, 'audit-cli.log'), 'utf8').trim().split('\n');
    const actions = chain.map((line) => JSON.parse(line) as { action?: string; key_id?: string; result?: string }).filter((record) => record.key_id === keyId);
    expect(actions.map((record) => [record.action, record.result])).toEqual([
      ['get-parameters-for-import', 'OK'],
      ['import-key-material', 'OK'],
    ]);
    expect(chain.join('\n')).not.toContain(material.toString('base64').slice(0, 20));
    expect(chain.join('\n')).not.toContain(material.toString('hex').slice(0, 20));
    const deleted = await runCli(t, ['key', 'delete-material', '--project', 'project-a', keyId]);
    expect({ code: deleted.code, stderr: deleted.stderr }).toEqual({ code: 0, stderr: '' });
    expect((await describe_(keyId)).key_state).toBe('5');
    expectKmsError(await decryptDataKey(keyId, cipher), 400, 'KMS.1301');
    // The same file again: the old data key decrypts again.
    expect((await runCli(t, ['key', 'import', '--project', 'project-a', keyId, '--material', file])).code).toBe(0);
    expect((await decryptDataKey(keyId, cipher)).body.data_key).toBe(plain);
  }, 120_000);
});
