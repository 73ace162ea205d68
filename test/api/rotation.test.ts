import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { KeyRotator } from '../../src/kms/key-rotation';
import { dataBlobFromText } from '../../src/kms/data-blob-codec';
import { decodeBlob } from '../../src/kms/blob-codec';
import { createLogger } from '../../src/logger';
import type { MetadataStore } from '../../src/domain/repositories';
import { openStore } from '../../src/store/open-store';
import { expectKmsError } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { makeDataDir, useTestService, type TestService } from '../helpers/service';
import { postAlone, readAdminCredentials, startServiceProcess } from '../helpers/service-process';

/**
 * Rotation with key material versions: each rotation a new HSM object for the same key id with the
 * next version; new seals use the newest, every blob opens by the version it carries. Scheduled
 * rotation from due times in the database, once across processes; interrupted rotations rolled
 * back; the GCM IV budget's seal counts rotating a key by themselves.
 */

/**
 * A tiny GCM IV budget for the budget tests (the other tests seal at most four times per version),
 * and no timed flush, so that the tests decide when counts reach the database. One service per
 * file: NSS's softoken cannot be initialised twice in one process.
 */
const SEAL_BUDGET = 8;

const t = useTestService({ env: { KMS_SEAL_BUDGET: String(SEAL_BUDGET), KMS_SEAL_COUNT_FLUSH_SECONDS: '3600' } });
const kms = t.client('project-a');

function dataKeyWithDigest(): string {
  const dek = Buffer.alloc(32, 0x11);
  return Buffer.concat([dek, createHash('sha256').update(dek).digest()]).toString('hex');
}

let aliases = 0;
async function newKey(): Promise<string> {
  const created = await kms.call('create-key', { key_alias: `rotation-${++aliases}` });
  expect(created.status).toBe(200);
  return created.body.key_info.key_id as string;
}

async function status(keyId: string): Promise<Record<string, unknown> & { number_of_rotations: number }> {
  const response = await kms.call('get-key-rotation-status', { key_id: keyId });
  expect(response.status).toBe(200);
  return response.body;
}

/** A second store on the service's database, as another process or instance has. */
async function otherProcess(service: TestService): Promise<{ rotations: MetadataStore['rotations']; rotator: KeyRotator; close: () => Promise<void> }> {
  const store = await openStore(service.config);
  const rotator = new KeyRotator({
    rotations: store.rotations,
    leases: store.leases,
    hsm: service.service.hsm,
    clock: service.clock.read,
    logger: createLogger('silent'),
    sealBudget: service.config.sealBudget,
  });
  return { rotations: store.rotations, rotator, close: () => store.close() };
}

describe('material versions', () => {
  it('seals under version 0, rotates twice, and opens all three generations', async () => {
    const keyId = await newKey();
    const context = { table: 'orders' };
    const generations: Array<{ data: string; dataKey: { cipher: string; plain: string } }> = [];
    for (let generation = 0; generation < 3; generation++) {
      if (generation > 0) {
        const rotated = await kms.call('rotate-on-demand', { key_id: keyId });
        expect(rotated.status).toBe(200);
        expect(rotated.body).toEqual({ key_id: keyId });
      }
      const data = await kms.call('encrypt-data', { key_id: keyId, plain_text: `generation ${generation}`, encryption_context: context });
      const dataKey = await kms.call('create-datakey', { key_id: keyId, encryption_context: context });
      expect(dataBlobFromText(data.body.cipher_text).materialVersion).toBe(generation);
      expect(decodeBlob(Buffer.from(dataKey.body.cipher_text, 'hex')).materialVersion).toBe(generation);
      generations.push({ data: data.body.cipher_text, dataKey: { cipher: dataKey.body.cipher_text, plain: dataKey.body.plain_text } });
    }
    for (const [generation, blobs] of generations.entries()) {
      const opened = await kms.call('decrypt-data', { cipher_text: blobs.data, encryption_context: context });
      expect(opened.body.plain_text).toBe(`generation ${generation}`);
      const key = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: blobs.dataKey.cipher, datakey_cipher_length: '32', encryption_context: context });
      expect(key.body.data_key).toBe(blobs.dataKey.plain);
    }
    // One HSM object per version, for the same key id.
    for (const version of [0, 1, 2]) expect(await t.service.hsm.hasKey({ keyId, version })).toBe(true);
    const rotation = await status(keyId);
    expect(rotation).toMatchObject({ key_rotation_enabled: false, rotation_interval: 365, number_of_rotations: 2, last_rotation_time: String(t.clock.now) });
    expect((rotation.key_materials as Array<{ version: number }>).map((material) => material.version)).toEqual([0, 1, 2]);
    // re-encrypt moves an old blob to the newest version.
    const moved = await kms.call('re-encrypt', { destination_key_id: keyId, cipher_text: generations[0]!.data, source_encryption_context: context });
    expect(dataBlobFromText(moved.body.cipher_text).materialVersion).toBe(2);
  });

  it('destroys every version when the deletion window ends', async () => {
    const keyId = await newKey();
    await kms.call('rotate-on-demand', { key_id: keyId });
    await kms.call('rotate-on-demand', { key_id: keyId });
    expect((await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
    t.clock.advanceDays(8);
    await t.service.maintenance.run();
    for (const version of [0, 1, 2]) expect(await t.service.hsm.hasKey({ keyId, version })).toBe(false);
    expectKmsError(await kms.call('get-key-rotation-status', { key_id: keyId }), 404, 'KMS.0207');
  });
});

describe('scheduled rotation', () => {
  it('rotates when the interval has passed, from the due time in the database, across a restart', async () => {
    const keyId = await newKey();
    expect((await kms.call('enable-key-rotation', { key_id: keyId })).body).toEqual({});
    expect((await kms.call('update-key-rotation-interval', { key_id: keyId, rotation_interval: 30 })).body).toEqual({});
    expect(await status(keyId)).toMatchObject({ key_rotation_enabled: true, rotation_interval: 30, number_of_rotations: 0, last_rotation_time: '' });
    expect((await kms.call('describe-key', { key_id: keyId })).body.key_info.key_rotation_enabled).toBe('true');

    await t.restart();
    t.clock.advanceDays(29);
    await t.service.maintenance.run();
    expect((await status(keyId)).number_of_rotations).toBe(0);
    t.clock.advanceDays(2);
    await t.service.maintenance.run();
    expect(await status(keyId)).toMatchObject({ number_of_rotations: 1, last_rotation_time: String(t.clock.now) });
    // The next one is due an interval after this one, not at once again.
    await t.service.maintenance.run();
    expect((await status(keyId)).number_of_rotations).toBe(1);
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'after the scheduled rotation' });
    expect(dataBlobFromText(sealed.body.cipher_text).materialVersion).toBe(1);
  });

  it('happens once when several processes share the database', async () => {
    const keyIds = [await newKey(), await newKey(), await newKey()];
    for (const keyId of keyIds) await kms.call('enable-key-rotation', { key_id: keyId });
    t.clock.advanceDays(366);
    const other = await otherProcess(t);
    try {
      // Keys of earlier tests may be due again by now: all of them count, each once.
      const due = (await other.rotations.due(t.clock.now)).map((key) => key.keyId);
      expect(due).toEqual(expect.arrayContaining(keyIds));
      const passes = await Promise.all([t.service.rotator.rotateDue(), other.rotator.rotateDue(), t.service.rotator.rotateDue()]);
      expect(passes.reduce((sum, pass) => sum + pass.rotated, 0)).toBe(due.length);
    } finally {
      await other.close();
    }
    for (const keyId of keyIds) {
      expect((await status(keyId)).number_of_rotations).toBe(1);
      expect(await t.service.hsm.hasKey({ keyId, version: 2 })).toBe(false);
    }
  });

  it('skips disabled keys and those whose rotation was turned off', async () => {
    const disabled = await newKey();
    const turnedOff = await newKey();
    for (const keyId of [disabled, turnedOff]) await kms.call('enable-key-rotation', { key_id: keyId });
    await kms.call('disable-key', { key_id: disabled });
    await kms.call('disable-key-rotation', { key_id: turnedOff });
    t.clock.advanceDays(400);
    await t.service.maintenance.run();
    expect((await status(disabled)).number_of_rotations).toBe(0);
    expect(await status(turnedOff)).toMatchObject({ key_rotation_enabled: false, number_of_rotations: 0 });
    // Enabled again, the overdue rotation happens at the next pass.
    await kms.call('enable-key', { key_id: disabled });
    await t.service.maintenance.run();
    expect((await status(disabled)).number_of_rotations).toBe(1);
  });
});

describe('an interrupted rotation', () => {
  it('is rolled back at start-up: the HSM object made before the crash is destroyed, and rotating works again', async () => {
    const keyId = await newKey();
    const before = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'before the crash' });
    const other = await otherProcess(t);
    try {
      // What a process had done when it died: the claim and the version's record, then the HSM object.
      expect(await other.rotations.claim(keyId, 'on-demand', t.clock.now, t.config.sealBudget)).toBe(1);
      await t.service.hsm.generateKey({ keyId, version: 1 });
    } finally {
      await other.close();
    }
    // While claimed, another rotation of the key waits for it.
    expectKmsError(await kms.call('rotate-on-demand', { key_id: keyId }), 503, 'KMS.0104');

    await t.restart();
    expect(await t.service.hsm.hasKey({ keyId, version: 1 })).toBe(false);
    expect(t.logs.text).toContain('rolled back an interrupted key rotation');
    const rotation = await status(keyId);
    expect(rotation.number_of_rotations).toBe(0);
    expect((rotation.key_materials as unknown[]).length).toBe(1);
    expect(dataBlobFromText((await kms.call('encrypt-data', { key_id: keyId, plain_text: 'x' })).body.cipher_text).materialVersion).toBe(0);

    expect((await kms.call('rotate-on-demand', { key_id: keyId })).status).toBe(200);
    expect(await t.service.hsm.hasKey({ keyId, version: 1 })).toBe(true);
    expect((await kms.call('decrypt-data', { cipher_text: before.body.cipher_text })).body.plain_text).toBe('before the crash');
  });

  it('is rolled back by the sweep once past the grace, not while it may still be under way', async () => {
    const keyId = await newKey();
    const other = await otherProcess(t);
    try {
      expect(await other.rotations.claim(keyId, 'on-demand', t.clock.now, t.config.sealBudget)).toBe(1);
    } finally {
      await other.close();
    }
    await t.service.maintenance.run();
    expectKmsError(await kms.call('rotate-on-demand', { key_id: keyId }), 503, 'KMS.0104');
    t.clock.now += 61_000;
    const logged = t.logs.lines.length;
    expect(await t.service.maintenance.run()).toMatchObject({ failed: 0 });
    expect(t.logs.lines.slice(logged).join('')).toContain('rolled back an interrupted key rotation');
    expect((await kms.call('rotate-on-demand', { key_id: keyId })).status).toBe(200);
    expect((await status(keyId)).number_of_rotations).toBe(1);
  });
});

describe('the GCM IV budget', () => {
  it('counts seals per version and rotates a key past the budget, with scheduled rotation off', async () => {
    const keyId = await newKey();
    const encrypt = jest.spyOn(t.service.hsm.symmetric, 'encrypt');
    try {
      for (let i = 0; i < 3; i++) await kms.call('encrypt-data', { key_id: keyId, plain_text: `seal ${i}` });
      for (let i = 0; i < 3; i++) await kms.call('create-datakey-without-plaintext', { key_id: keyId });
      await kms.call('encrypt-datakey', { key_id: keyId, plain_text: dataKeyWithDigest(), datakey_plain_length: '32' });
      const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'the eighth' });
      await kms.call('re-encrypt', { destination_key_id: keyId, cipher_text: sealed.body.cipher_text });
      expect(encrypt).toHaveBeenCalledTimes(SEAL_BUDGET + 1);
    } finally {
      encrypt.mockRestore();
    }
    // Counted in memory and reported before any flush; nothing rotated yet.
    expect(await status(keyId)).toMatchObject({ key_rotation_enabled: false, seal_count: SEAL_BUDGET + 1, seal_budget: SEAL_BUDGET, number_of_rotations: 0 });
    await t.service.usage.flush();
    const rotated = await status(keyId);
    expect(rotated).toMatchObject({ number_of_rotations: 1, seal_count: 0 });
    expect((rotated.key_materials as Array<{ version: number; seal_count: number }>).map((m) => [m.version, m.seal_count])).toEqual([[0, SEAL_BUDGET + 1], [1, 0]]);
    const next = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'under the new version' });
    expect(dataBlobFromText(next.body.cipher_text).materialVersion).toBe(1);
    // Flushing again does not rotate again: version 1 has one seal.
    await t.service.usage.flush();
    expect((await status(keyId)).number_of_rotations).toBe(1);
  });

  it('does not rotate below the budget', async () => {
    const keyId = await newKey();
    for (let i = 0; i < SEAL_BUDGET - 1; i++) await kms.call('encrypt-data', { key_id: keyId, plain_text: 'y' });
    await t.service.usage.flush();
    await t.service.maintenance.run();
    expect(await status(keyId)).toMatchObject({ number_of_rotations: 0, seal_count: SEAL_BUDGET - 1 });
  });

  it('is checked by the sweep too, for counts a process flushed without rotating (it stopped)', async () => {
    const keyId = await newKey();
    for (let i = 0; i < SEAL_BUDGET; i++) await kms.call('create-datakey-without-plaintext', { key_id: keyId });
    await t.service.usage.flush({ rotate: false });
    expect((await status(keyId)).number_of_rotations).toBe(0);
    await t.service.maintenance.run();
    expect((await status(keyId)).number_of_rotations).toBe(1);
  });
});

describe('the endpoints', () => {
  it('enable-key-rotation: KMS.2901 when already enabled; KMS.0210 pending deletion; KMS.0207, KMS.0205, KMS.0204', async () => {
    const keyId = await newKey();
    expect((await kms.call('enable-key-rotation', { key_id: keyId, sequence: '919c82d4-8046-4722-9094-35c3c6524cff' })).status).toBe(200);
    expectKmsError(await kms.call('enable-key-rotation', { key_id: keyId }), 400, 'KMS.2901');
    const pending = await newKey();
    await kms.call('schedule-key-deletion', { key_id: pending, pending_days: '7' });
    expectKmsError(await kms.call('enable-key-rotation', { key_id: pending }), 400, 'KMS.0210');
    expectKmsError(await kms.call('enable-key-rotation', { key_id: '0d0466b0-e727-4d9c-b35d-f84bb474a37f' }), 404, 'KMS.0207');
    expectKmsError(await t.client('project-b').call('enable-key-rotation', { key_id: keyId }), 404, 'KMS.0207');
    expectKmsError(await kms.call('enable-key-rotation', { key_id: 'not-a-key' }), 400, 'KMS.0205');
    expectKmsError(await kms.call('enable-key-rotation', {}), 400, 'KMS.0204');
  });

  it('disable-key-rotation: KMS.0313 when not enabled', async () => {
    const keyId = await newKey();
    expectKmsError(await kms.call('disable-key-rotation', { key_id: keyId }), 400, 'KMS.0313');
    await kms.call('enable-key-rotation', { key_id: keyId });
    expect((await kms.call('disable-key-rotation', { key_id: keyId })).body).toEqual({});
    expect((await status(keyId)).key_rotation_enabled).toBe(false);
    expect((await kms.call('describe-key', { key_id: keyId })).body.key_info.key_rotation_enabled).toBe('false');
  });

  it.each([29, 366, 0, -30, 30.5, '30', null, true])('update-key-rotation-interval refuses rotation_interval %j with KMS.3001', async (interval) => {
    const keyId = await newKey();
    await kms.call('enable-key-rotation', { key_id: keyId });
    const response = await kms.call('update-key-rotation-interval', { key_id: keyId, rotation_interval: interval });
    expectKmsError(response, 400, 'KMS.3001');
  });

  it('update-key-rotation-interval: 30 and 365 taken; KMS.0313 when rotation is off; KMS.0204 without the interval', async () => {
    const keyId = await newKey();
    expectKmsError(await kms.call('update-key-rotation-interval', { key_id: keyId, rotation_interval: 90 }), 400, 'KMS.0313');
    await kms.call('enable-key-rotation', { key_id: keyId });
    for (const days of [30, 365]) {
      expect((await kms.call('update-key-rotation-interval', { key_id: keyId, rotation_interval: days })).status).toBe(200);
      expect((await status(keyId)).rotation_interval).toBe(days);
    }
    expectKmsError(await kms.call('update-key-rotation-interval', { key_id: keyId }), 400, 'KMS.0204');
  });

  it('rotate-on-demand: KMS.0209 disabled, KMS.0210 pending deletion', async () => {
    const keyId = await newKey();
    await kms.call('disable-key', { key_id: keyId });
    expectKmsError(await kms.call('rotate-on-demand', { key_id: keyId }), 400, 'KMS.0209');
    await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' });
    expectKmsError(await kms.call('rotate-on-demand', { key_id: keyId }), 400, 'KMS.0210');
    expect(await t.service.hsm.hasKey({ keyId, version: 1 })).toBe(false);
  });

  it('each asks for its permission (403 KMS.0307 otherwise)', async () => {
    const keyId = await newKey();
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['enable-key-rotation', { key_id: keyId }, 'kms:cmk:enableRotation'],
      ['update-key-rotation-interval', { key_id: keyId, rotation_interval: 60 }, 'kms:cmk:updateRotation'],
      ['get-key-rotation-status', { key_id: keyId }, 'kms:cmk:getRotation'],
      ['rotate-on-demand', { key_id: keyId }, 'kms:cmk:updateRotation'],
      ['disable-key-rotation', { key_id: keyId }, 'kms:cmk:disableRotation'],
    ];
    for (const [operation, body, action] of cases) {
      expectKmsError(await t.client('project-a', ['kms:dek:*', 'kms:cmk:get', 'kms:cmk:crypto']).call(operation, body), 403, 'KMS.0307');
      expect((await t.client('project-a', [action]).call(operation, body)).status).toBe(200);
    }
  });
});

describe('through the official SDK', () => {
  it('answers the SDK models: rotation_interval and number_of_rotations numbers, key_rotation_enabled a boolean', async () => {
    // The SDK signs with the real time, which the service's clock (moved by the tests above) must be near.
    t.clock.now = Date.now();
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-a', ak: issued.access_key, sk: issued.secret_key });
    const keyId = await newKey();
    expect((await sdk.call('enable-key-rotation', { key_id: keyId })).status).toBe(200);
    expect((await sdk.call('update-key-rotation-interval', { key_id: keyId, rotation_interval: 180 })).status).toBe(200);
    expect(await sdk.call('update-key-rotation-interval', { key_id: keyId, rotation_interval: 10 })).toMatchObject({ status: 400, errorCode: 'KMS.3001' });
    expect((await sdk.call('rotate-on-demand', { key_id: keyId })).body).toEqual({ key_id: keyId });
    const shown = await sdk.call('get-key-rotation-status', { key_id: keyId });
    expect(shown.body).toMatchObject({ key_rotation_enabled: true, rotation_interval: 180, number_of_rotations: 1 });
    expect(typeof shown.body.last_rotation_time).toBe('string');
    expect((await sdk.call('disable-key-rotation', { key_id: keyId })).status).toBe(200);
    expect(await sdk.call('disable-key-rotation', { key_id: keyId })).toMatchObject({ status: 400, errorCode: 'KMS.0313' });
  });
});

describe('the service as users run it', () => {
  it('keeps rotated versions and the seal counts (flushed at shutdown) across a restart', async () => {
    const dataDir = makeDataDir();
    try {
      let service = await startServiceProcess(dataDir, { KMS_WORKERS: '1' });
      const admin = readAdminCredentials(dataDir);
      const keyId = (await postAlone(service.url, admin, 'create-key', { key_alias: 'process-rotation' })).body.key_info!.key_id;
      const first = await postAlone(service.url, admin, 'create-datakey', { key_id: keyId });
      expect((await postAlone(service.url, admin, 'rotate-on-demand', { key_id: keyId })).status).toBe(200);
      const second = await postAlone(service.url, admin, 'create-datakey', { key_id: keyId });
      expect(await service.stop()).toBe(0);

      service = await startServiceProcess(dataDir, { KMS_WORKERS: '1' });
      try {
        for (const blob of [first, second]) {
          const opened = await postAlone(service.url, admin, 'decrypt-datakey', { key_id: keyId, cipher_text: blob.body.cipher_text, datakey_cipher_length: '32' });
          expect(opened.body.data_key).toBe(blob.body.plain_text);
        }
        const shown = (await postAlone(service.url, admin, 'get-key-rotation-status', { key_id: keyId })).body as unknown as {
          number_of_rotations: number;
          key_materials: Array<{ version: number; seal_count: number }>;
        };
        expect(shown.number_of_rotations).toBe(1);
        expect(shown.key_materials.map((m) => [m.version, m.seal_count])).toEqual([[0, 1], [1, 1]]);
      } finally {
        await service.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
