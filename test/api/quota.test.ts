import { expectKmsError } from '../helpers/client';
import { startTestService, type TestService } from '../helpers/service';

let t: TestService;

beforeAll(async () => {
  t = await startTestService({ env: { KMS_MAX_KEYS_PER_PROJECT: '2' } });
});

afterAll(async () => {
  await t.stop();
});

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
