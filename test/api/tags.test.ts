import { readFileSync } from 'node:fs';
import { createKeyId, expectKmsError, type KmsClient, type KmsResponse } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';

/**
 * The six tag operations (issue 20): create-kms-tag, the batch tags action, delete-tag,
 * show-kms-tags, list-kms-tags and the resource_instances action, with Huawei's limits, the
 * routing of the tag paths beside the operation names, and the official SDK's signer over a
 * percent-encoded tag key. Tags are metadata only (the HSM is never asked), so this runs on
 * SoftHSM only, not once more on NSS's softoken.
 */

const t = useTestService();
const kms = t.client('project-a');

let aliases = 0;
async function createKey(alias = `tagged-${++aliases}`, client: KmsClient = kms): Promise<string> {
  return createKeyId(client, alias);
}

const tag = (keyId: string, key: string, value?: string, client: KmsClient = kms): Promise<KmsResponse> =>
  client.call(`${keyId}/tags`, { tag: value === undefined ? { key } : { key, value } });
const batch = (keyId: string, action: string, tags: unknown, client: KmsClient = kms): Promise<KmsResponse> => client.call(`${keyId}/tags/action`, { action, tags });
const show = (keyId: string, client: KmsClient = kms): Promise<KmsResponse> => client.raw(`${keyId}/tags`, { method: 'GET' });
const untag = (keyId: string, key: string, client: KmsClient = kms): Promise<KmsResponse> =>
  client.raw(`${keyId}/tags/${encodeURIComponent(key)}`, { method: 'DELETE' });
const projectTags = (client: KmsClient = kms): Promise<KmsResponse> => client.raw('tags', { method: 'GET' });
const search = (body: unknown, client: KmsClient = kms): Promise<KmsResponse> => client.call('resource_instances/action', body);

async function tagsOf(keyId: string): Promise<Array<{ key: string; value: string }>> {
  const shown = await show(keyId);
  expect(shown.status).toBe(200);
  expect(shown.body.existTagsNum).toBe(shown.body.tags.length);
  return shown.body.tags;
}

function expectNoContent(response: KmsResponse): void {
  expect({ status: response.status, body: response.body }).toEqual({ status: 204, body: '' });
  expect(response.headers.get('content-type')).toBeNull();
  expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f]{32}$/);
}

/** The audit lines of a response (the service writes a turn's records at the end of the turn). */
async function auditLine(response: KmsResponse): Promise<Record<string, unknown>> {
  await new Promise((resolve) => setImmediate(resolve));
  const requestId = response.headers.get('x-request-id');
  const lines = readFileSync(t.config.auditLogPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .filter((line) => (JSON.parse(line) as Record<string, unknown>).request_id === requestId);
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

describe('a key\'s tags', () => {
  it('create-kms-tag answers 204 without a body, and sets the value of a tag key it has; show-kms-tags lists them in code point order, with existTagsNum', async () => {
    const keyId = await createKey();
    expect(await show(keyId)).toMatchObject({ status: 200, body: { tags: [], existTagsNum: 0 } });
    expectNoContent(await tag(keyId, 'team', 'billing'));
    expectNoContent(await tag(keyId, 'Team'));
    expectNoContent(await tag(keyId, '环境', '生产'));
    expectNoContent(await tag(keyId, 'team', 'payments'));
    expect(await tagsOf(keyId)).toEqual([
      { key: 'Team', value: '' },
      { key: 'team', value: 'payments' },
      { key: '环境', value: '生产' },
    ]);
  });

  it('the batch action creates and deletes all or none; delete names a tag by its key, or its key and value, and skips what is not there', async () => {
    const keyId = await createKey();
    expectNoContent(await batch(keyId, 'create', [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '3' }]));
    // One bad tag of three: none is written.
    expectKmsError(await batch(keyId, 'create', [{ key: 'd', value: '4' }, { key: 'e*', value: '5' }, { key: 'a', value: 'changed' }]), 400, 'KMS.0406');
    expect(await tagsOf(keyId)).toEqual([{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '3' }]);
    expectNoContent(await batch(keyId, 'delete', [{ key: 'a' }, { key: 'b', value: 'not-2' }, { key: 'missing' }]));
    expect(await tagsOf(keyId)).toEqual([{ key: 'b', value: '2' }, { key: 'c', value: '3' }]);
    expectNoContent(await batch(keyId, 'delete', [{ key: 'b', value: '2' }]));
    expect(await tagsOf(keyId)).toEqual([{ key: 'c', value: '3' }]);
  });

  it('delete-tag takes the tag key percent-encoded (a Chinese one too); a key without the tag is 404 KMS.0416; a tag key named "action" is a tag key there', async () => {
    const keyId = await createKey();
    expectNoContent(await batch(keyId, 'create', [{ key: '环境', value: '生产' }, { key: 'action', value: 'x' }, { key: 'a/b %', value: 'y' }]));
    expectNoContent(await untag(keyId, '环境'));
    expectNoContent(await untag(keyId, 'action'));
    expectNoContent(await untag(keyId, 'a/b %'));
    expect(await tagsOf(keyId)).toEqual([]);
    expectKmsError(await untag(keyId, '环境'), 404, 'KMS.0416');
    expectKmsError(await untag(keyId, 'x'.repeat(37)), 400, 'KMS.0411');
    expectKmsError(await untag(keyId, 'a=b'), 400, 'KMS.0406');
    // A path segment that does not decode.
    expectKmsError(await kms.raw(`${keyId}/tags/%E6%ZZ`, { method: 'DELETE' }), 400, 'KMS.0201');
  });

  it('refuses each tag Huawei refuses, and writes nothing: lengths in code points, forbidden characters, the lists, the action', async () => {
    const keyId = await createKey();
    expectNoContent(await tag(keyId, 'k'.repeat(36), 'v'.repeat(43)));
    expectNoContent(await tag(keyId, '键'.repeat(36), '值'.repeat(43)));
    expectNoContent(await tag(keyId, '😀', ''));
    expectKmsError(await tag(keyId, ''), 400, 'KMS.0411');
    expectKmsError(await tag(keyId, 'k'.repeat(37)), 400, 'KMS.0411');
    expectKmsError(await tag(keyId, 'k', 'v'.repeat(44)), 400, 'KMS.0410');
    for (const bad of ['a*', 'a<', 'a>', 'a\\b', 'a=b', 'a\u0000', 'a\tb', 'a\u001f', '\ud800']) {
      expectKmsError(await tag(keyId, bad), 400, 'KMS.0406');
      expectKmsError(await tag(keyId, 'fine', bad), 400, 'KMS.0405');
    }
    expectKmsError(await kms.call(`${keyId}/tags`, { tag: { value: 'no key' } }), 400, 'KMS.0204');
    expectKmsError(await kms.call(`${keyId}/tags`, { tag: 'team=x' }), 400, 'KMS.0414');
    expectKmsError(await kms.call(`${keyId}/tags`, {}), 400, 'KMS.0204');
    expectKmsError(await batch(keyId, 'create', []), 400, 'KMS.0401');
    expectKmsError(await batch(keyId, 'create', Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, value: '' }))), 400, 'KMS.0407');
    expectKmsError(await batch(keyId, 'create', [{ key: 'dup', value: '1' }, { key: 'dup', value: '2' }]), 400, 'KMS.0412');
    expectKmsError(await batch(keyId, 'update', [{ key: 'a', value: '1' }]), 400, 'KMS.0404');
    expectKmsError(await batch(keyId, 'create', { key: 'a' }), 400, 'KMS.0414');
    expectKmsError(await batch(keyId, 'delete', [{ key: 'a', value: 'v'.repeat(44) }]), 400, 'KMS.0410');
    expect((await tagsOf(keyId)).map((each) => each.key)).toEqual(['k'.repeat(36), '键'.repeat(36), '😀']);
  });

  it('holds a key to 10 tags: the eleventh is KMS.0409 and nothing is written; setting a value of a tag it has still works', async () => {
    const keyId = await createKey();
    expectNoContent(await batch(keyId, 'create', Array.from({ length: 9 }, (_, i) => ({ key: `k${i}`, value: 'v' }))));
    expectKmsError(await batch(keyId, 'create', [{ key: 'k0', value: 'changed' }, { key: 'new-1', value: '' }, { key: 'new-2', value: '' }]), 400, 'KMS.0409');
    expect(await tagsOf(keyId)).toHaveLength(9);
    expect((await tagsOf(keyId))[0]).toEqual({ key: 'k0', value: 'v' });
    expectNoContent(await tag(keyId, 'k9', 'tenth'));
    expectKmsError(await tag(keyId, 'k10', 'eleventh'), 400, 'KMS.0409');
    expectNoContent(await tag(keyId, 'k0', 'changed'));
    expect(await tagsOf(keyId)).toHaveLength(10);
  });

  it('a key pending deletion keeps its tags but is not tagged or untagged (KMS.0210); a key whose window has ended is gone with its tags', async () => {
    const keyId = await createKey();
    expectNoContent(await tag(keyId, 'leaving', 'soon'));
    expect((await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
    expectKmsError(await tag(keyId, 'more'), 400, 'KMS.0210');
    expectKmsError(await batch(keyId, 'delete', [{ key: 'leaving' }]), 400, 'KMS.0210');
    expectKmsError(await untag(keyId, 'leaving'), 400, 'KMS.0210');
    expect(await tagsOf(keyId)).toEqual([{ key: 'leaving', value: 'soon' }]);
    expect((await projectTags()).body.tags).toContainEqual({ key: 'leaving', values: ['soon'] });
    expect((await kms.call('cancel-key-deletion', { key_id: keyId })).status).toBe(200);
    // Disabled now: tags are metadata, and a disabled key is tagged.
    expectNoContent(await tag(keyId, 'more'));
    expect((await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
    t.clock.advanceDays(8);
    try {
      expectKmsError(await show(keyId), 404, 'KMS.0207');
      expectKmsError(await tag(keyId, 'again'), 404, 'KMS.0207');
      expect((await projectTags()).body.tags.map((each: { key: string }) => each.key)).not.toContain('leaving');
      expect((await search({ action: 'count', tags: [{ key: 'leaving', values: [] }] })).body).toEqual({ total_count: 0 });
    } finally {
      t.clock.advanceDays(-8);
    }
  });

  it('a key of another project, or none, is KMS.0207 for every tag operation', async () => {
    const elsewhere = await createKey('tags-elsewhere', t.client('project-b'));
    const absent = '0b2c8f3e-1d2a-4c5b-8e9f-0a1b2c3d4e5f';
    for (const keyId of [elsewhere, absent]) {
      expectKmsError(await tag(keyId, 'x'), 404, 'KMS.0207');
      expectKmsError(await batch(keyId, 'create', [{ key: 'x', value: '' }]), 404, 'KMS.0207');
      expectKmsError(await untag(keyId, 'x'), 404, 'KMS.0207');
      expectKmsError(await show(keyId), 404, 'KMS.0207');
    }
  });
});

describe('the project\'s tags and the search by tag', () => {
  // A project of its own, so that the other tests' keys are not found here.
  let client: KmsClient;
  const keys: Record<string, string> = {};
  beforeAll(async () => {
    client = t.client('project-search');
    for (const [alias, tags] of [
      ['Orders-Alpha', [{ key: 'team', value: 'billing' }, { key: 'env', value: 'prod' }]],
      ['orders-beta', [{ key: 'team', value: 'payments' }, { key: 'env', value: 'test' }]],
      ['invoices', [{ key: 'team', value: 'billing' }]],
      ['untagged', []],
    ] as const) {
      keys[alias] = await createKey(alias, client);
      if (tags.length > 0) expectNoContent(await batch(keys[alias]!, 'create', tags, client));
    }
  });

  const names = (response: KmsResponse): string[] => {
    expect(response.status).toBe(200);
    return response.body.resources.map((resource: { resource_name: string }) => resource.resource_name);
  };

  it('list-kms-tags: every tag key of the project with the values its keys give it', async () => {
    const listed = await projectTags(client);
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({ tags: [{ key: 'env', values: ['prod', 'test'] }, { key: 'team', values: ['billing', 'payments'] }] });
    expect((await projectTags(t.client('project-without-tags'))).body).toEqual({ tags: [] });
  });

  it('filter: values of one tag key are OR\'ed, tag keys AND\'ed, no values is any value; each key found comes with its details and tags', async () => {
    expect(names(await search({ action: 'filter', tags: [{ key: 'team', values: ['billing'] }] }, client))).toEqual(['Orders-Alpha', 'invoices']);
    expect(names(await search({ action: 'filter', tags: [{ key: 'team', values: ['billing', 'payments'] }] }, client))).toEqual(['Orders-Alpha', 'orders-beta', 'invoices']);
    expect(names(await search({ action: 'filter', tags: [{ key: 'team', values: ['billing', 'payments'] }, { key: 'env', values: ['prod'] }] }, client))).toEqual(['Orders-Alpha']);
    expect(names(await search({ action: 'filter', tags: [{ key: 'env', values: [] }] }, client))).toEqual(['Orders-Alpha', 'orders-beta']);
    expect(names(await search({ action: 'filter', tags: [{ key: 'env' }] }, client))).toEqual(['Orders-Alpha', 'orders-beta']);
    expect(names(await search({ action: 'filter', tags: [{ key: 'TEAM', values: [] }] }, client))).toEqual([]);
    expect(names(await search({ action: 'filter' }, client))).toEqual(['Orders-Alpha', 'orders-beta', 'invoices', 'untagged']);
    const found = await search({ action: 'filter', tags: [{ key: 'env', values: ['prod'] }] }, client);
    const described = await client.call('describe-key', { key_id: keys['Orders-Alpha'] });
    expect(found.body).toEqual({
      resources: [
        {
          resource_id: keys['Orders-Alpha'],
          resource_detail: described.body.key_info,
          resource_name: 'Orders-Alpha',
          tags: [{ key: 'env', value: 'prod' }, { key: 'team', value: 'billing' }],
        },
      ],
      total_count: 1,
    });
  });

  it('matches resource_name: a fragment of the alias, ignoring ASCII case (Huawei\'s fuzzy match), with the tags', async () => {
    const byName = (value: string, tags: unknown[] = []): Promise<KmsResponse> => search({ action: 'filter', tags, matches: [{ key: 'resource_name', value }] }, client);
    expect(names(await byName('orders'))).toEqual(['Orders-Alpha', 'orders-beta']);
    expect(names(await byName('ORDERS-B'))).toEqual(['orders-beta']);
    expect(names(await byName('voice', [{ key: 'team', values: ['billing'] }]))).toEqual(['invoices']);
    expect(names(await byName('orders', [{ key: 'team', values: ['billing'] }]))).toEqual(['Orders-Alpha']);
    expect(names(await byName('%'))).toEqual([]);
  });

  it('pages with limit and offset, oldest first; total_count counts every key found; count answers only that', async () => {
    const all = { tags: [{ key: 'team', values: ['billing', 'payments'] }] };
    const first = await search({ action: 'filter', ...all, limit: '2' }, client);
    const second = await search({ action: 'filter', ...all, limit: '2', offset: '2' }, client);
    const beyond = await search({ action: 'filter', ...all, offset: '10' }, client);
    expect(names(first)).toEqual(['Orders-Alpha', 'orders-beta']);
    expect(names(second)).toEqual(['invoices']);
    expect(names(beyond)).toEqual([]);
    expect([first, second, beyond].map((page) => page.body.total_count)).toEqual([3, 3, 3]);
    expect(await search({ action: 'count', ...all }, client)).toMatchObject({ status: 200, body: { total_count: 3 } });
    expect((await search({ action: 'count', ...all, limit: '1' }, client)).body).toEqual({ total_count: 3 });
    expect((await search({ action: 'count' }, client)).body).toEqual({ total_count: 4 });
  });

  it('refuses a search Huawei refuses, each with its code', async () => {
    const cases: Array<[unknown, string]> = [
      [{ action: 'list' }, 'KMS.0404'],
      [{}, 'KMS.0204'],
      [{ action: 'filter', limit: '0' }, 'KMS.1601'],
      [{ action: 'filter', limit: '1001' }, 'KMS.1601'],
      [{ action: 'filter', limit: 10 }, 'KMS.1601'],
      [{ action: 'filter', offset: '-1' }, 'KMS.0417'],
      [{ action: 'count', offset: '0' }, 'KMS.0418'],
      [{ action: 'filter', tags: [{ key: 'team', values: ['a'] }, { key: 'team', values: ['b'] }] }, 'KMS.0412'],
      [{ action: 'filter', tags: [{ key: 'team', values: ['a', 'a'] }] }, 'KMS.0412'],
      [{ action: 'filter', tags: Array.from({ length: 11 }, (_, i) => ({ key: `k${i}`, values: [] })) }, 'KMS.0407'],
      [{ action: 'filter', tags: [{ key: 'team', values: Array.from({ length: 11 }, (_, i) => `v${i}`) }] }, 'KMS.0413'],
      [{ action: 'filter', tags: [{ key: 'a*', values: [] }] }, 'KMS.0406'],
      [{ action: 'filter', tags: [{ key: 'team', values: ['<'] }] }, 'KMS.0405'],
      [{ action: 'filter', tags: 'team' }, 'KMS.0414'],
      [{ action: 'filter', matches: [{ key: 'resource_id', value: 'x' }] }, 'KMS.0403'],
      [{ action: 'filter', matches: [{ key: 'resource_name', value: '' }] }, 'KMS.0402'],
      [{ action: 'filter', matches: [{ key: 'resource_name', value: 'x'.repeat(256) }] }, 'KMS.0402'],
      [{ action: 'filter', matches: [{ key: 'resource_name', value: 'a' }, { key: 'resource_name', value: 'b' }] }, 'KMS.0415'],
      [{ action: 'filter', matches: { key: 'resource_name', value: 'a' } }, 'KMS.0415'],
    ];
    for (const [body, code] of cases) expectKmsError(await search(body, client), 400, code);
  });
});

describe('routing, permissions and the audit trail', () => {
  it('/kms/tags and /kms/resource_instances/action are never read as a key id, nor an operation name as one', async () => {
    // An operation's name, or a literal segment, where a key id goes: an unknown URL, not a key lookup.
    expectKmsError(await kms.raw('create-key/tags', { method: 'GET' }), 400, 'KMS.0201');
    expectKmsError(await kms.call('resource_instances/tags', { tag: { key: 'x' } }), 400, 'KMS.0201');
    expectKmsError(await kms.call('tags/tags/action', { action: 'create', tags: [{ key: 'x' }] }), 400, 'KMS.0201');
    // The fixed paths answer as themselves.
    expect((await projectTags()).status).toBe(200);
    expect((await search({ action: 'count' })).status).toBe(200);
    // Methods a path does not have.
    const keyId = await createKey();
    expectKmsError(await kms.raw(`${keyId}/tags`, { method: 'DELETE' }), 405, 'KMS.0215');
    expectKmsError(await kms.call('tags', {}), 405, 'KMS.0215');
    expectKmsError(await kms.raw('resource_instances/action', { method: 'GET' }), 405, 'KMS.0215');
    expectKmsError(await kms.raw(`${keyId}/tags/x`, { method: 'GET' }), 405, 'KMS.0215');
    // A trailing slash is another path.
    expectKmsError(await kms.raw(`${keyId}/tags/`, { method: 'GET' }), 400, 'KMS.0201');
  });

  it('each operation asks its own kms:cmkTag permission, which kms:cmk:* does not give', async () => {
    const keyId = await createKey();
    expectNoContent(await tag(keyId, 'team', 'x'));
    const reader = t.client('project-a', ['kms:cmkTag:list']);
    expect((await show(keyId, reader)).status).toBe(200);
    expect((await projectTags(reader)).status).toBe(200);
    expectKmsError(await search({ action: 'count' }, reader), 403, 'KMS.0307');
    expectKmsError(await tag(keyId, 'team', 'y', reader), 403, 'KMS.0307');
    const keyAdmin = t.client('project-a', ['kms:cmk:*']);
    for (const refused of [await tag(keyId, 'team', 'y', keyAdmin), await batch(keyId, 'delete', [{ key: 'team' }], keyAdmin), await untag(keyId, 'team', keyAdmin), await show(keyId, keyAdmin)]) {
      expectKmsError(refused, 403, 'KMS.0307');
    }
    const tagger = t.client('project-a', ['kms:cmkTag:*']);
    expectNoContent(await untag(keyId, 'team', tagger));
    expect((await search({ action: 'count' }, tagger)).status).toBe(200);
  });

  it('audits every tag operation by its name and the key, never the tag keys or values', async () => {
    const keyId = await createKey();
    const created = await tag(keyId, 'secret-project', 'codename-x');
    expect(await auditLine(created)).toMatchObject({ action: 'create-kms-tag', permission: 'kms:cmkTag:create', key_id: keyId, status: 204, result: 'OK' });
    // Refused before the key is looked up: it names none, as every operation's record does then.
    const batched = await batch(keyId, 'create', [{ key: 'a*', value: '' }]);
    expect(await auditLine(batched)).toMatchObject({ action: 'batch-create-kms-tags', permission: 'kms:cmkTag:batch', key_id: null, status: 400, result: 'KMS.0406' });
    const tooMany = await batch(keyId, 'create', Array.from({ length: 10 }, (_, i) => ({ key: `k${i}`, value: '' })));
    expect(await auditLine(tooMany)).toMatchObject({ action: 'batch-create-kms-tags', key_id: keyId, status: 400, result: 'KMS.0409' });
    const shown = await show(keyId);
    expect(await auditLine(shown)).toMatchObject({ action: 'show-kms-tags', key_id: keyId, status: 200, result: 'OK' });
    const deleted = await untag(keyId, 'secret-project');
    expect(await auditLine(deleted)).toMatchObject({ action: 'delete-tag', permission: 'kms:cmkTag:delete', key_id: keyId, status: 204, result: 'OK' });
    expect(await auditLine(await projectTags())).toMatchObject({ action: 'list-kms-tags', key_id: null });
    expect(await auditLine(await search({ action: 'count' }))).toMatchObject({ action: 'list-kms-by-tags', permission: 'kms:cmkTag:listInstance', key_id: null });
    const trail = readFileSync(t.config.auditLogPath, 'utf8');
    expect(trail).not.toContain('secret-project');
    expect(trail).not.toContain('codename-x');
  });
});

describe('a key named by its alias (v2) or alias URN in a tag path', () => {
  it("takes the alias percent-encoded in {key_id} (one segment), for all four of a key's tag paths, and audits the key's id", async () => {
    const keyId = await createKey();
    expect((await kms.call('aliases', { key_id: keyId, alias: 'alias/tags/by-alias' })).status).toBe(201);
    const byAlias = encodeURIComponent('alias/tags/by-alias');
    const byUrn = encodeURIComponent(`kms:${t.config.region}:project-a:alias:alias/tags/by-alias`);
    const created = await tag(byAlias, 'team', 'billing');
    expectNoContent(created);
    expect(await auditLine(created)).toMatchObject({ action: 'create-kms-tag', key_id: keyId, status: 204 });
    expectNoContent(await batch(byUrn, 'create', [{ key: 'env', value: 'prod' }]));
    // A lower-case escape is the same path segment.
    expect(await show('alias%2ftags%2fby-alias')).toMatchObject({ status: 200, body: { tags: [{ key: 'env', value: 'prod' }, { key: 'team', value: 'billing' }], existTagsNum: 2 } });
    expectNoContent(await untag(byUrn, 'env'));
    expect(await tagsOf(keyId)).toEqual([{ key: 'team', value: 'billing' }]);
    // Another project's URN, and an alias no key holds, name no key here.
    expectKmsError(await show(encodeURIComponent('kms:elsewhere:project-b:alias:alias/tags/by-alias')), 404, 'KMS.0207');
    expectKmsError(await show(encodeURIComponent('alias/tags/nobody')), 404, 'KMS.0207');
  });

  it('answers an alias sent with its slash raw (more path segments) 400 KMS.0201, never a 500, and an escaped string of no key shape 400', async () => {
    const keyId = await createKey();
    expect((await kms.call('aliases', { key_id: keyId, alias: 'alias/tags/raw' })).status).toBe(201);
    for (const refused of [await show('alias/tags/raw'), await tag('alias/tags/raw', 'team', 'x'), await untag('alias/tags/raw', 'team'), await batch('alias/tags/raw', 'delete', [{ key: 'team' }])]) {
      expectKmsError(refused, 400, 'KMS.0201');
    }
    expectKmsError(await show(encodeURIComponent('alias/')), 400, 'KMS.0201');
    expectKmsError(await show(encodeURIComponent('orders/main')), 400, 'KMS.0201');
    expect(await tagsOf(keyId)).toEqual([]);
  });
});

describe('the official SDK (its signer over the tag paths)', () => {
  it('drives all six operations, a Chinese tag key in delete-tag\'s path as the SDK encodes and signs it', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk-tags', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk-tags', ak: issued.access_key, sk: issued.secret_key });
    const created = await sdk.call('create-key', { key_alias: 'sdk-tagged' });
    expect(created.status).toBe(200);
    const keyId = created.body.key_info.key_id as string;
    const path = '/v1.0/{project_id}/kms/{key_id}/tags';
    // As KmsClient's ParamCreater builds each request: path parameters given raw, the SDK fills them in.
    expect(await sdk.request({ method: 'POST', url: path, pathParams: { key_id: keyId }, body: { tag: { key: '环境', value: '生产' } } })).toMatchObject({ status: 204 });
    expect(
      await sdk.request({ method: 'POST', url: `${path}/action`, pathParams: { key_id: keyId }, body: { action: 'create', tags: [{ key: 'team', value: 'billing' }, { key: 'a b', value: '' }] } }),
    ).toMatchObject({ status: 204 });
    const shown = await sdk.request({ method: 'GET', url: path, pathParams: { key_id: keyId } });
    expect(shown).toMatchObject({ status: 200, body: { tags: [{ key: 'a b', value: '' }, { key: 'team', value: 'billing' }, { key: '环境', value: '生产' }], existTagsNum: 3 } });
    expect(await sdk.request({ method: 'GET', url: '/v1.0/{project_id}/kms/tags' })).toMatchObject({
      status: 200,
      body: { tags: [{ key: 'a b', values: [''] }, { key: 'team', values: ['billing'] }, { key: '环境', values: ['生产'] }] },
    });
    const found = await sdk.call('resource_instances/action', { action: 'filter', tags: [{ key: '环境', values: ['生产'] }], matches: [{ key: 'resource_name', value: 'SDK-' }] });
    expect(found).toMatchObject({ status: 200, body: { total_count: 1, resources: [{ resource_id: keyId, resource_name: 'sdk-tagged' }] } });
    expect(await sdk.request({ method: 'DELETE', url: `${path}/{key}`, pathParams: { key_id: keyId, key: '环境' } })).toMatchObject({ status: 204 });
    expect(await sdk.request({ method: 'DELETE', url: `${path}/{key}`, pathParams: { key_id: keyId, key: 'a b' } })).toMatchObject({ status: 204 });
    expect(await sdk.request({ method: 'DELETE', url: `${path}/{key}`, pathParams: { key_id: keyId, key: '环境' } })).toMatchObject({ status: 404, errorCode: 'KMS.0416' });
    expect((await sdk.request({ method: 'GET', url: path, pathParams: { key_id: keyId } })).body).toEqual({ tags: [{ key: 'team', value: 'billing' }], existTagsNum: 1 });
  });

  it('takes an alias or alias URN in {key_id} escaped by the caller (encodeURIComponent), as the SDK signs it; given raw, it is 400 KMS.0201', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk-alias-tags', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk-alias-tags', ak: issued.access_key, sk: issued.secret_key });
    const keyId = (await sdk.call('create-key', { key_alias: 'sdk-alias-tagged' })).body.key_info.key_id as string;
    expect(await sdk.call('aliases', { key_id: keyId, alias: 'alias/sdk/tagged' })).toMatchObject({ status: 201 });
    const path = '/v1.0/{project_id}/kms/{key_id}/tags';
    const alias = encodeURIComponent('alias/sdk/tagged');
    const urn = encodeURIComponent(`kms:${t.config.region}:project-sdk-alias-tags:alias:alias/sdk/tagged`);
    expect(await sdk.request({ method: 'POST', url: path, pathParams: { key_id: alias }, body: { tag: { key: '环境', value: '生产' } } })).toMatchObject({ status: 204 });
    expect(await sdk.request({ method: 'POST', url: `${path}/action`, pathParams: { key_id: urn }, body: { action: 'create', tags: [{ key: 'a b', value: '' }] } })).toMatchObject({
      status: 204,
    });
    expect(await sdk.request({ method: 'GET', url: path, pathParams: { key_id: urn } })).toMatchObject({
      status: 200,
      body: { tags: [{ key: 'a b', value: '' }, { key: '环境', value: '生产' }], existTagsNum: 2 },
    });
    // delete-tag: the escaped alias and a tag key the core escapes on its own, in one path.
    expect(await sdk.request({ method: 'DELETE', url: `${path}/{key}`, pathParams: { key_id: alias, key: 'a b' } })).toMatchObject({ status: 204 });
    expect(await sdk.request({ method: 'DELETE', url: `${path}/{key}`, pathParams: { key_id: alias, key: '环境' } })).toMatchObject({ status: 204 });
    // What the core sends for a key_id holding a raw slash: more path segments, no tag path.
    expect(await sdk.request({ method: 'GET', url: path, pathParams: { key_id: 'alias/sdk/tagged' } })).toMatchObject({ status: 400, errorCode: 'KMS.0201' });
    expect((await sdk.request({ method: 'GET', url: path, pathParams: { key_id: keyId } })).body).toEqual({ tags: [], existTagsNum: 0 });
  });
});
