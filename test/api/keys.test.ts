/**
 * Key lifecycle scenarios against the real service (SoftHSMv2 token, SQLite store, HTTP):
 * create, describe, list, enable/disable, scheduled deletion, aliases and descriptions, and
 * isolation between projects.
 */
import { expectKmsError, type KmsClient, type KmsResponse } from '../helpers/client';
import { useTestService } from '../helpers/service';

const KEY_ID = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;
const REQUEST_ID = /^[0-9a-f]{32}$/;
const DAY_MS = 86_400_000;
/** Well-formed, but no key has it. */
const UNKNOWN_KEY_ID = '00000000-0000-4000-8000-000000000000';

const KEY_DETAILS_FIELDS = [
  'key_id',
  'domain_id',
  'key_alias',
  'realm',
  'key_spec',
  'key_usage',
  'key_description',
  'creation_date',
  'scheduled_deletion_date',
  'key_state',
  'default_key_flag',
  'key_type',
  'expiration_time',
  'origin',
  'key_rotation_enabled',
  'sys_enterprise_project_id',
  'keystore_id',
].sort();

/** Keeps aliases unique across the whole file, so that scenarios never collide. */
let aliasCounter = 0;

const t = useTestService();
const a = t.client('project-a');
const b = t.client('project-b');

function freshAlias(prefix = 'key'): string {
  aliasCounter += 1;
  return `${prefix}-${aliasCounter}`;
}

/** A 200 with the X-Request-Id header every response carries; returns the body. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
function expectOk(response: KmsResponse): any {
  expect({ status: response.status, body: response.body }).toEqual({ status: 200, body: expect.anything() });
  expect(response.headers.get('x-request-id')).toMatch(REQUEST_ID);
  return response.body;
}

/** Creates a key in the client's project and returns its id. */
async function createKey(client: KmsClient = a, alias = freshAlias(), extra: Record<string, string> = {}): Promise<string> {
  const body = expectOk(await client.call('create-key', { key_alias: alias, ...extra }));
  return body.key_info.key_id as string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function describeKey(client: KmsClient, keyId: string): Promise<any> {
  return expectOk(await client.call('describe-key', { key_id: keyId })).key_info;
}

describe('create-key', () => {
  it('creates a key and answers {key_info:{key_id, domain_id}}', async () => {
    const response = await a.call('create-key', { key_alias: freshAlias('create') });
    const body = expectOk(response);
    expect(Object.keys(body)).toEqual(['key_info']);
    expect(Object.keys(body.key_info).sort()).toEqual(['domain_id', 'key_id']);
    expect(body.key_info.key_id).toMatch(KEY_ID);
    expect(body.key_info.key_id).toHaveLength(36);
    expect(body.key_info.domain_id).toBe('project-a');
  });

  it('gives each key its own id', async () => {
    const first = await createKey();
    const second = await createKey();
    expect(first).not.toBe(second);
  });

  it('describes a new key with every KeyDetails field as a string and the documented defaults', async () => {
    const alias = freshAlias('described');
    const createdAt = t.clock.now;
    const keyId = await createKey(a, alias);

    const info = await describeKey(a, keyId);
    expect(Object.keys(info).sort()).toEqual(KEY_DETAILS_FIELDS);
    for (const field of KEY_DETAILS_FIELDS) expect({ field, type: typeof info[field] }).toEqual({ field, type: 'string' });
    expect(info).toMatchObject({
      key_id: keyId,
      domain_id: 'project-a',
      key_alias: alias,
      realm: t.config.region,
      key_spec: 'AES_256',
      key_usage: 'ENCRYPT_DECRYPT',
      key_description: '',
      key_state: '2',
      origin: 'kms',
      scheduled_deletion_date: '',
      default_key_flag: '0',
      key_rotation_enabled: 'false',
    });
    expect(info.creation_date).toMatch(/^\d{13}$/);
    expect(info.creation_date).toBe(String(createdAt));
  });

  it('stores key_description', async () => {
    const keyId = await createKey(a, freshAlias(), { key_description: 'orders database, prod' });
    expect((await describeKey(a, keyId)).key_description).toBe('orders database, prod');
  });

  it('accepts key_spec AES_256, key_usage ENCRYPT_DECRYPT and origin kms given explicitly', async () => {
    const keyId = await createKey(a, freshAlias(), { key_spec: 'AES_256', key_usage: 'ENCRYPT_DECRYPT', origin: 'kms' });
    expect(await describeKey(a, keyId)).toMatchObject({ key_spec: 'AES_256', key_usage: 'ENCRYPT_DECRYPT', origin: 'kms' });
  });

  // Other key kinds: test/api/signing.test.ts.
  it.each([
    ['key_spec SM4', { key_spec: 'SM4' }, 'KMS.0308'],
    ['key_spec AES_128', { key_spec: 'AES_128' }, 'KMS.0308'],
    ['key_usage SIGN_VERIFY for AES_256', { key_usage: 'SIGN_VERIFY' }, 'KMS.1115'],
    ['an origin that is neither kms nor external', { origin: 'elsewhere' }, 'KMS.0308'],
    ['origin external for an HMAC key (only AES_256 material and RSA and EC private keys are imported)', { origin: 'external', key_spec: 'HMAC_256' }, 'KMS.0308'],
  ])('refuses %s with 400 and creates nothing', async (_label, extra, code) => {
    const alias = freshAlias('unsupported');
    expectKmsError(await a.call('create-key', { key_alias: alias, ...extra }), 400, code);
    // The alias is still free: nothing was reserved.
    await createKey(a, alias);
  });

  describe('aliases and descriptions', () => {
    it('refuses a duplicate alias in the same project with KMS.1104', async () => {
      const alias = freshAlias('dup');
      await createKey(a, alias);
      expectKmsError(await a.call('create-key', { key_alias: alias }), 400, 'KMS.1104');
    });

    it('allows the same alias in another project', async () => {
      const alias = freshAlias('shared');
      const inA = await createKey(a, alias);
      const inB = await createKey(b, alias);
      expect(inB).not.toBe(inA);
      expect((await describeKey(b, inB)).key_alias).toBe(alias);
    });

    it('refuses an alias ending in /default with KMS.1101', async () => {
      expectKmsError(await a.call('create-key', { key_alias: 'obs/default' }), 400, 'KMS.1101');
    });

    it('accepts every character the alias pattern allows', async () => {
      const alias = `${freshAlias()}:Aa0/_-`;
      const keyId = await createKey(a, alias);
      expect((await describeKey(a, keyId)).key_alias).toBe(alias);
    });

    it.each([
      ['an alias with a space', 'my key'],
      ['an alias with a dot', 'my.key'],
      ['a non-ASCII alias', 'clé'],
      ['an empty alias', ''],
      ['a 256-character alias', 'k'.repeat(256)],
    ])('refuses %s with KMS.1101', async (_label, alias) => {
      expectKmsError(await a.call('create-key', { key_alias: alias }), 400, 'KMS.1101');
    });

    it('accepts a 255-character description and refuses 256 with KMS.1103', async () => {
      await createKey(a, freshAlias(), { key_description: 'd'.repeat(255) });
      expectKmsError(await a.call('create-key', { key_alias: freshAlias(), key_description: 'd'.repeat(256) }), 400, 'KMS.1103');
    });
  });
});

describe('list-keys', () => {
  it('agrees on total, keys and key_details', async () => {
    await createKey();
    const body = expectOk(await a.call('list-keys', {}));
    expect(body.total).toBeGreaterThanOrEqual(1);
    expect(body.keys).toHaveLength(body.total);
    expect(body.key_details).toHaveLength(body.total);
    expect(body.key_details.map((details: { key_id: string }) => details.key_id)).toEqual(body.keys);
    expect(body).toMatchObject({ truncated: 'false', next_marker: '' });
    for (const details of body.key_details) expect(details.domain_id).toBe('project-a');
  });

  describe('pagination in a project of five keys', () => {
    const project = t.client('project-paging');
    let created: string[];

    beforeAll(async () => {
      created = [];
      for (let i = 0; i < 5; i++) created.push(await createKey(project));
    });

    it('pages with limit "2": markers "2", "4", then the last page', async () => {
      const first = expectOk(await project.call('list-keys', { limit: '2' }));
      expect(first).toMatchObject({ total: 5, truncated: 'true', next_marker: '2' });
      expect(first.keys).toHaveLength(2);

      const second = expectOk(await project.call('list-keys', { limit: '2', marker: first.next_marker }));
      expect(second).toMatchObject({ total: 5, truncated: 'true', next_marker: '4' });
      expect(second.keys).toHaveLength(2);

      const last = expectOk(await project.call('list-keys', { limit: '2', marker: second.next_marker }));
      expect(last).toMatchObject({ total: 5, truncated: 'false', next_marker: '' });
      expect(last.keys).toHaveLength(1);

      const paged = [...first.keys, ...second.keys, ...last.keys];
      expect(new Set(paged).size).toBe(5);
      expect([...paged].sort()).toEqual([...created].sort());
    });

    it('pages in the same order as one full listing', async () => {
      const all = expectOk(await project.call('list-keys', {})).keys;
      const page = expectOk(await project.call('list-keys', { limit: '3', marker: '1' }));
      expect(page.keys).toEqual(all.slice(1, 4));
      expect(page.key_details.map((details: { key_id: string }) => details.key_id)).toEqual(page.keys);
    });

    it('answers an empty last page for a marker past the end', async () => {
      const body = expectOk(await project.call('list-keys', { limit: '2', marker: '5' }));
      expect(body).toEqual({ keys: [], key_details: [], total: 5, truncated: 'false', next_marker: '' });
    });

    it('returns everything with limit "1000"', async () => {
      const body = expectOk(await project.call('list-keys', { limit: '1000' }));
      expect(body).toMatchObject({ total: 5, truncated: 'false', next_marker: '' });
      expect(body.keys).toHaveLength(5);
    });

    it('filters on key_state', async () => {
      const [disabled] = created;
      expectOk(await project.call('disable-key', { key_id: disabled }));

      const onlyDisabled = expectOk(await project.call('list-keys', { key_state: '3' }));
      expect(onlyDisabled).toMatchObject({ total: 1, keys: [disabled], truncated: 'false' });
      expect(onlyDisabled.key_details[0].key_state).toBe('3');

      const onlyEnabled = expectOk(await project.call('list-keys', { key_state: '2' }));
      expect(onlyEnabled.total).toBe(4);
      expect(onlyEnabled.keys).not.toContain(disabled);

      expect(expectOk(await project.call('list-keys', { key_state: '4' }))).toMatchObject({ total: 0, keys: [] });

      expectOk(await project.call('enable-key', { key_id: disabled }));
    });

    it('filters on key_spec: ALL and AES_256 match every key, another spec none', async () => {
      expect(expectOk(await project.call('list-keys', { key_spec: 'ALL' })).total).toBe(5);
      expect(expectOk(await project.call('list-keys', { key_spec: 'AES_256' })).total).toBe(5);
      expect(expectOk(await project.call('list-keys', { key_spec: 'RSA_2048' }))).toEqual({
        keys: [],
        key_details: [],
        total: 0,
        truncated: 'false',
        next_marker: '',
      });
    });
  });

  it.each(['0', '1001', ''])('refuses limit "%s" with KMS.1601', async (limit) => {
    expectKmsError(await a.call('list-keys', { limit }), 400, 'KMS.1601');
  });

  it.each(['abc', '-1'])('refuses marker "%s" with KMS.1602', async (marker) => {
    expectKmsError(await a.call('list-keys', { marker }), 400, 'KMS.1602');
  });

  it('works with no body at all', async () => {
    await createKey();
    const body = expectOk(await a.raw('list-keys', { method: 'POST' }));
    expect(body.total).toBeGreaterThanOrEqual(1);
    expect(body.keys).toHaveLength(body.total);
  });
});

describe('enable-key and disable-key', () => {
  it('disables an enabled key, refuses to disable it again, enables it, refuses to enable it again', async () => {
    const keyId = await createKey();

    expect(expectOk(await a.call('disable-key', { key_id: keyId }))).toEqual({ key_info: { key_id: keyId, key_state: '3' } });
    expect((await describeKey(a, keyId)).key_state).toBe('3');
    expectKmsError(await a.call('disable-key', { key_id: keyId }), 400, 'KMS.1301');

    expect(expectOk(await a.call('enable-key', { key_id: keyId }))).toEqual({ key_info: { key_id: keyId, key_state: '2' } });
    expect((await describeKey(a, keyId)).key_state).toBe('2');
    expectKmsError(await a.call('enable-key', { key_id: keyId }), 400, 'KMS.1201');
  });
});

describe('schedule-key-deletion and cancel-key-deletion', () => {
  it.each(['6', '0', '1097', 'abc', ''])('refuses pending_days "%s" with KMS.1401 and leaves the key alone', async (days) => {
    const keyId = await createKey();
    expectKmsError(await a.call('schedule-key-deletion', { key_id: keyId, pending_days: days }), 400, 'KMS.1401');
    expect(await describeKey(a, keyId)).toMatchObject({ key_state: '2', scheduled_deletion_date: '' });
  });

  it.each([7, 1096])('accepts the boundary pending_days "%i"', async (days) => {
    const keyId = await createKey();
    expect(expectOk(await a.call('schedule-key-deletion', { key_id: keyId, pending_days: String(days) }))).toEqual({
      key_id: keyId,
      key_state: '4',
    });
    expect((await describeKey(a, keyId)).scheduled_deletion_date).toBe(String(t.clock.now + days * DAY_MS));
  });

  it('schedules, refuses changes while pending, and cancels back to disabled', async () => {
    const alias = freshAlias('doomed');
    const keyId = await createKey(a, alias);

    const scheduled = expectOk(await a.call('schedule-key-deletion', { key_id: keyId, pending_days: '10' }));
    expect(scheduled).toEqual({ key_id: keyId, key_state: '4' });
    expect(await describeKey(a, keyId)).toMatchObject({
      key_state: '4',
      scheduled_deletion_date: String(t.clock.now + 10 * DAY_MS),
    });

    expectKmsError(await a.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' }), 400, 'KMS.1402');
    expectKmsError(await a.call('enable-key', { key_id: keyId }), 400, 'KMS.0210');
    expectKmsError(await a.call('disable-key', { key_id: keyId }), 400, 'KMS.0210');
    expectKmsError(await a.call('update-key-alias', { key_id: keyId, key_alias: freshAlias() }), 400, 'KMS.0210');
    expectKmsError(await a.call('update-key-description', { key_id: keyId, key_description: 'new' }), 400, 'KMS.0210');
    // Nothing of the refused changes stuck.
    expect(await describeKey(a, keyId)).toMatchObject({ key_state: '4', key_alias: alias, key_description: '' });

    expect(expectOk(await a.call('cancel-key-deletion', { key_id: keyId }))).toEqual({ key_id: keyId, key_state: '3' });
    expect(await describeKey(a, keyId)).toMatchObject({ key_state: '3', scheduled_deletion_date: '' });

    // The cancelled key is an ordinary disabled key again.
    expectKmsError(await a.call('cancel-key-deletion', { key_id: keyId }), 400, 'KMS.1501');
    expectOk(await a.call('enable-key', { key_id: keyId }));
  });

  it('schedules the deletion of a disabled key too', async () => {
    const keyId = await createKey();
    expectOk(await a.call('disable-key', { key_id: keyId }));
    expect(expectOk(await a.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' }))).toEqual({ key_id: keyId, key_state: '4' });
  });

  it('refuses to cancel the deletion of a key that is not pending deletion with KMS.1501', async () => {
    const enabled = await createKey();
    expectKmsError(await a.call('cancel-key-deletion', { key_id: enabled }), 400, 'KMS.1501');

    const disabled = await createKey();
    expectOk(await a.call('disable-key', { key_id: disabled }));
    expectKmsError(await a.call('cancel-key-deletion', { key_id: disabled }), 400, 'KMS.1501');
  });

  describe('when the deletion window ends', () => {
    // Its own project: moving the clock must not end other scenarios' windows by surprise.
    const project = t.client('project-deletion');

    it('the key is gone at once, and the sweep destroys its material in the HSM', async () => {
      const pendingDays = 7;
      const keyId = await createKey(project);
      const survivor = await createKey(project);
      expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(true);
      expectOk(await project.call('schedule-key-deletion', { key_id: keyId, pending_days: String(pendingDays) }));

      // One day before the end the key is still there, pending deletion.
      t.clock.advanceDays(pendingDays - 1);
      expect((await describeKey(project, keyId)).key_state).toBe('4');

      t.clock.advanceDays(2);
      // Gone for the API before any sweep has run: not described, not listed, not counted.
      expectKmsError(await project.call('describe-key', { key_id: keyId }), 404, 'KMS.0207');
      const before = expectOk(await project.call('list-keys', {}));
      expect(before.keys).toEqual([survivor]);
      expect(before.total).toBe(1);
      expectKmsError(await project.call('cancel-key-deletion', { key_id: keyId }), 404, 'KMS.0207');
      expectKmsError(await project.call('enable-key', { key_id: keyId }), 404, 'KMS.0207');

      const report = await t.service.maintenance.run();
      expect(report.deleted).toBeGreaterThanOrEqual(1);
      expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
      expectKmsError(await project.call('describe-key', { key_id: keyId }), 404, 'KMS.0207');

      const list = expectOk(await project.call('list-keys', {}));
      expect(list.keys).toEqual([survivor]);
      expect(list.total).toBe(1);

      // The other key of the project, never scheduled, is untouched.
      expect((await describeKey(project, survivor)).key_state).toBe('2');
    });

    it('frees the alias the moment the window ends, even before the sweep', async () => {
      const alias = freshAlias('reused');
      const keyId = expectOk(await project.call('create-key', { key_alias: alias })).key_info.key_id;
      expectOk(await project.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' }));
      expectKmsError(await project.call('create-key', { key_alias: alias }), 400, 'KMS.1104');
      t.clock.advanceDays(8);
      const reused = expectOk(await project.call('create-key', { key_alias: alias })).key_info.key_id;
      expect(reused).not.toBe(keyId);
      expect((await describeKey(project, reused)).key_alias).toBe(alias);
      // Taking the alias finished the old key's deletion, material included.
      expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    });
  });
});

describe('update-key-alias and update-key-description', () => {
  it('renames a key: {key_info:{key_id, key_alias}}, and describe-key shows the new alias', async () => {
    const keyId = await createKey();
    const alias = freshAlias('renamed');
    expect(expectOk(await a.call('update-key-alias', { key_id: keyId, key_alias: alias }))).toEqual({
      key_info: { key_id: keyId, key_alias: alias },
    });
    expect((await describeKey(a, keyId)).key_alias).toBe(alias);
  });

  it('frees the old alias for another key', async () => {
    const oldAlias = freshAlias('old');
    const keyId = await createKey(a, oldAlias);
    expectOk(await a.call('update-key-alias', { key_id: keyId, key_alias: freshAlias('new') }));
    await createKey(a, oldAlias);
  });

  it('refuses an alias another key of the project has with KMS.1104', async () => {
    const taken = freshAlias('taken');
    await createKey(a, taken);
    const keyId = await createKey();
    const before = (await describeKey(a, keyId)).key_alias;
    expectKmsError(await a.call('update-key-alias', { key_id: keyId, key_alias: taken }), 400, 'KMS.1104');
    expect((await describeKey(a, keyId)).key_alias).toBe(before);
  });

  it('accepts a key keeping its own alias', async () => {
    const alias = freshAlias('same');
    const keyId = await createKey(a, alias);
    expect(expectOk(await a.call('update-key-alias', { key_id: keyId, key_alias: alias })).key_info.key_alias).toBe(alias);
  });

  it.each([
    ['ending in /default', 'evs/default'],
    ['with invalid characters', 'bad alias!'],
  ])('refuses a new alias %s with KMS.1101', async (_label, alias) => {
    const keyId = await createKey();
    expectKmsError(await a.call('update-key-alias', { key_id: keyId, key_alias: alias }), 400, 'KMS.1101');
  });

  it('changes the description: {key_info:{key_id, key_description}}', async () => {
    const keyId = await createKey(a, freshAlias(), { key_description: 'before' });
    expect(expectOk(await a.call('update-key-description', { key_id: keyId, key_description: 'after' }))).toEqual({
      key_info: { key_id: keyId, key_description: 'after' },
    });
    expect((await describeKey(a, keyId)).key_description).toBe('after');

    expectOk(await a.call('update-key-description', { key_id: keyId, key_description: '' }));
    expect((await describeKey(a, keyId)).key_description).toBe('');
  });

  it('refuses a description over 255 characters with KMS.1103', async () => {
    const keyId = await createKey();
    expectKmsError(await a.call('update-key-description', { key_id: keyId, key_description: 'x'.repeat(256) }), 400, 'KMS.1103');
  });

  it('updates a disabled key', async () => {
    const keyId = await createKey();
    expectOk(await a.call('disable-key', { key_id: keyId }));
    expectOk(await a.call('update-key-description', { key_id: keyId, key_description: 'retired' }));
    expect(await describeKey(a, keyId)).toMatchObject({ key_state: '3', key_description: 'retired' });
  });
});

describe('isolation between projects', () => {
  const aliasOfA = freshAlias('private');
  let keyOfA: string;

  beforeAll(async () => {
    keyOfA = await createKey(a, aliasOfA);
  });

  it.each([
    ['describe-key', {}],
    ['enable-key', {}],
    ['disable-key', {}],
    ['schedule-key-deletion', { pending_days: '7' }],
    ['cancel-key-deletion', {}],
    ['update-key-alias', { key_alias: 'stolen' }],
    ['update-key-description', { key_description: 'stolen' }],
  ])("project-b gets 404 KMS.0207 for %s on project-a's key", async (operation, extra) => {
    expectKmsError(await b.call(operation, { key_id: keyOfA, ...extra }), 404, 'KMS.0207');
  });

  it("leaves project-a's key as it was", async () => {
    expect(await describeKey(a, keyOfA)).toMatchObject({
      key_alias: aliasOfA,
      key_state: '2',
      key_description: '',
      scheduled_deletion_date: '',
    });
  });

  it("does not list project-a's key in project-b", async () => {
    await createKey(b);
    const body = expectOk(await b.call('list-keys', {}));
    expect(body.total).toBeGreaterThanOrEqual(1);
    expect(body.keys).not.toContain(keyOfA);
    for (const details of body.key_details) expect(details.domain_id).toBe('project-b');
  });
});

describe('unknown keys', () => {
  it.each([
    ['describe-key', {}],
    ['enable-key', {}],
    ['disable-key', {}],
    ['schedule-key-deletion', { pending_days: '7' }],
    ['cancel-key-deletion', {}],
    ['update-key-alias', { key_alias: freshAlias('ghost') }],
    ['update-key-description', { key_description: 'ghost' }],
  ])('%s on a well-formed unknown key id is 404 KMS.0207', async (operation, extra) => {
    const response = await a.call(operation, { key_id: UNKNOWN_KEY_ID, ...extra });
    expectKmsError(response, 404, 'KMS.0207');
    expect(response.body.error.error_msg).toBe('The key does not exist.');
  });
});

describe('request ids', () => {
  it('gives every response, success or failure, its own X-Request-Id', async () => {
    const responses = [
      await a.call('create-key', { key_alias: freshAlias() }),
      await a.call('list-keys', {}),
      await a.call('describe-key', { key_id: UNKNOWN_KEY_ID }),
      await a.call('describe-key', { key_id: 'not-a-key' }),
      await a.raw('list-keys', { method: 'GET' }),
    ];
    const ids = responses.map((response) => response.headers.get('x-request-id'));
    for (const id of ids) expect(id).toMatch(REQUEST_ID);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
