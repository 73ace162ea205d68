import { expectKmsError, kmsClient, type KmsClient, type KmsResponse } from '../helpers/client';
import { useTestService } from '../helpers/service';

const t = useTestService({ env: { KMS_MAX_KEYS_PER_PROJECT: '2', KMS_MAX_GRANTS_PER_KEY: '3' } });

describe('the key quota of a project (KMS_MAX_KEYS_PER_PROJECT)', () => {
  it('refuses a key beyond it with KMS.1105, per project, and frees a place when a deletion window ends', async () => {
    const a = t.client('quota-a');
    const first = (await a.call('create-key', { key_alias: 'one' })).body.key_info.key_id;
    expect((await a.call('create-key', { key_alias: 'two' })).status).toBe(200);
    expectKmsError(await a.call('create-key', { key_alias: 'three' }), 400, 'KMS.1105');

    // Another project has its own quota.
    expect((await t.client('quota-b').call('create-key', { key_alias: 'one' })).status).toBe(200);

    // A key pending deletion still counts; once its window ends it does not, sweep or no sweep.
    await a.call('schedule-key-deletion', { key_id: first, pending_days: '7' });
    expectKmsError(await a.call('create-key', { key_alias: 'three' }), 400, 'KMS.1105');
    t.clock.advanceDays(8);
    expect((await a.call('create-key', { key_alias: 'three' })).status).toBe(200);
  });
});

/** GET /v1.0/{project}/kms/<operation>, as the SDKs send it (no body). */
function get(client: KmsClient, operation: string): Promise<KmsResponse> {
  return client.raw(operation, { method: 'GET', headers: { 'content-type': 'application/json' } });
}

describe('user-quotas and user-instances', () => {
  it('count the keys and the grants of the fullest key against the configured quotas, as JSON numbers', async () => {
    const c = t.client('quota-c');
    const empty = await get(c, 'user-quotas');
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({
      quotas: {
        resources: [
          { type: 'CMK', used: 0, quota: 2 },
          { type: 'grant_per_CMK', used: 0, quota: 3 },
        ],
      },
    });
    expect((await get(c, 'user-instances')).body).toEqual({ instance_num: 0 });

    const first = (await c.call('create-key', { key_alias: 'one' })).body.key_info.key_id;
    const second = (await c.call('create-key', { key_alias: 'two' })).body.key_info.key_id;
    const grantee = (await t.service.credentials.createToken({ projectId: 'quota-c', actions: ['kms:cmk:list'] })).principal_id;
    for (const keyId of [first, first, second]) {
      expect((await c.call('create-grant', { key_id: keyId, grantee_principal: grantee, operations: ['describe-key'] })).status).toBe(200);
    }
    expect((await get(c, 'user-quotas')).body.quotas.resources).toEqual([
      { type: 'CMK', used: 2, quota: 2 },
      { type: 'grant_per_CMK', used: 2, quota: 3 },
    ]);
    expect((await get(c, 'user-instances')).body).toEqual({ instance_num: 2 });

    // A key whose deletion window has ended counts no more, nor do its grants.
    await c.call('schedule-key-deletion', { key_id: first, pending_days: '7' });
    t.clock.advanceDays(8);
    expect((await get(c, 'user-quotas')).body.quotas.resources).toEqual([
      { type: 'CMK', used: 1, quota: 2 },
      { type: 'grant_per_CMK', used: 1, quota: 3 },
    ]);
    expect((await get(c, 'user-instances')).body).toEqual({ instance_num: 1 });
  });

  it('need kms:cmk:getQuota / kms:cmk:getInstance (KMS.0307), a credential (APIGW.0301), and a GET (KMS.0215)', async () => {
    const dekOnly = t.client('quota-c', ['kms:dek:*']);
    expectKmsError(await get(dekOnly, 'user-quotas'), 403, 'KMS.0307');
    expectKmsError(await get(dekOnly, 'user-instances'), 403, 'KMS.0307');
    expect((await get(t.client('quota-c', ['kms:cmk:getQuota']), 'user-quotas')).status).toBe(200);
    expect((await get(t.client('quota-c', ['kms:cmk:getInstance']), 'user-instances')).status).toBe(200);
    expectKmsError(await get(kmsClient(() => t.service.url, 'quota-c'), 'user-quotas'), 401, 'APIGW.0301');
    expectKmsError(await t.client('quota-c').call('user-quotas', {}), 405, 'KMS.0215');
    expectKmsError(await t.client('quota-c').raw('user-instances?x=1', { method: 'GET' }), 400, 'KMS.0308');
  });
});
