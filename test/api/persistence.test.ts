import { randomUUID } from 'node:crypto';
import { expectKmsError } from '../helpers/client';
import { useTestService } from '../helpers/service';

const t = useTestService();
const kms = t.client();

const HOUR_MS = 3_600_000;

describe('restart', () => {
  it('keeps keys, their states and every blob', async () => {
    const enabled = (await kms.call('create-key', { key_alias: 'survivor', key_description: 'kept' })).body.key_info.key_id;
    const disabled = (await kms.call('create-key', { key_alias: 'survivor-disabled' })).body.key_info.key_id;
    const dataKey = await kms.call('create-datakey', { key_id: enabled, encryption_context: { app: 'restart' } });
    await kms.call('disable-key', { key_id: disabled });
    const listed = (await kms.call('list-keys')).body;

    await t.restart();

    expect((await kms.call('list-keys')).body).toEqual(listed);
    expect((await kms.call('describe-key', { key_id: disabled })).body.key_info.key_state).toBe('3');
    const opened = await kms.call('decrypt-datakey', {
      key_id: enabled,
      cipher_text: dataKey.body.cipher_text,
      datakey_cipher_length: '32',
      encryption_context: { app: 'restart' },
    });
    expect(opened.status).toBe(200);
    expect(opened.body.data_key).toBe(dataKey.body.plain_text);
  });
});

describe('a crash in the middle of create-key', () => {
  /** What the service has done of create-key when the process dies after `steps`. */
  async function interruptedCreation(steps: 'record' | 'record+hsm'): Promise<string> {
    const keyId = randomUUID();
    await t.service.store.keys.insertProvisioning({
      keyId,
      projectId: kms.project,
      alias: `interrupted-${keyId}`,
      description: '',
      keySpec: 'AES_256',
      keyUsage: 'ENCRYPT_DECRYPT',
      origin: 'kms',
      state: '2',
      creationDate: t.clock.now,
      scheduledDeletionDate: null,
      materialVersion: 0,
    }, 1000);
    if (steps === 'record+hsm') await t.service.hsm.generateKey({ keyId, version: 0 });
    return keyId;
  }

  it('leaves no usable key and no record without material, after the HSM step', async () => {
    const keyId = await interruptedCreation('record+hsm');
    // Invisible while it may still be finishing (another process may be creating it)...
    expectKmsError(await kms.call('describe-key', { key_id: keyId }), 404, 'KMS.0207');
    expectKmsError(await kms.call('create-datakey', { key_id: keyId }), 404, 'KMS.0207');
    expect((await kms.call('list-keys')).body.keys).not.toContain(keyId);

    // ...and rolled back once it cannot be: material destroyed, alias free again.
    t.clock.now += HOUR_MS;
    await t.restart();
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expect(await t.service.store.keys.unprovisioned(t.clock.now)).toEqual([]);
    expect((await kms.call('create-key', { key_alias: `interrupted-${keyId}` })).status).toBe(200);
  });

  it('is rolled back at the next start however recent it is (no other process serves the data directory then), before the mismatch report', async () => {
    const withMaterial = await interruptedCreation('record+hsm');
    const withoutMaterial = await interruptedCreation('record');
    // The periodic sweep leaves a creation under a minute old alone: another worker may be making it.
    expect(await t.service.maintenance.run()).toEqual({ rolledBack: 0, deleted: 0, importsExpired: 0, skipped: 0, failed: 0 });
    const logged = t.logs.lines.length;

    await t.restart();
    expect(await t.service.hsm.hasKey({ keyId: withMaterial, version: 0 })).toBe(false);
    expect(await t.service.store.keys.unprovisioned(t.clock.now)).toEqual([]);
    expect(await t.service.store.keys.materialVersions(withoutMaterial)).toEqual([]);
    const startUp = t.logs.lines.slice(logged).join('');
    expect(startUp.match(/rolled back an interrupted key creation/g)).toHaveLength(2);
    expect(startUp).not.toContain('no record names');
    expect(startUp).not.toContain('have no material');
  });

  it('rolls back a creation that died before the HSM step', async () => {
    const keyId = await interruptedCreation('record');
    t.clock.now += HOUR_MS;
    expect(await t.service.maintenance.run()).toEqual({ rolledBack: 1, deleted: 0, importsExpired: 0, skipped: 0, failed: 0 });
    expectKmsError(await kms.call('describe-key', { key_id: keyId }), 404, 'KMS.0207');
  });
});

describe('a crash in the middle of the deletion job', () => {
  it('finishes the deletion when the material was destroyed but the record was not removed', async () => {
    const keyId = (await kms.call('create-key', { key_alias: 'half-deleted' })).body.key_info.key_id;
    await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' });
    t.clock.advanceDays(8);
    // The job destroyed the material, then the process died before it removed the record.
    expect(await t.service.hsm.destroyKey({ keyId, version: 0 })).toBe(true);

    expectKmsError(await kms.call('describe-key', { key_id: keyId }), 404, 'KMS.0207');
    await t.restart();
    expect(await t.service.store.keys.dueForDeletion(t.clock.now)).toEqual([]);
    expect(await t.service.store.keys.materialVersions(keyId)).toEqual([]);
    expectKmsError(await kms.call('cancel-key-deletion', { key_id: keyId }), 404, 'KMS.0207');
  });

  it('does not destroy a key whose deletion was cancelled in time', async () => {
    const keyId = (await kms.call('create-key', { key_alias: 'reprieved' })).body.key_info.key_id;
    await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' });
    t.clock.advanceDays(6);
    expect((await kms.call('cancel-key-deletion', { key_id: keyId })).body.key_state).toBe('3');
    t.clock.advanceDays(2);
    await t.service.maintenance.run();
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(true);
    expect((await kms.call('enable-key', { key_id: keyId })).status).toBe(200);
    expect((await kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
  });
});
