import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createKeyId, expectKmsError, kmsClient, type KmsResponse } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';

/**
 * Aliases (v2): create-alias, list-aliases, associate-alias, delete-alias, and an alias (or its
 * URN) taken wherever a key_id is, answered, audited and granted by the key's own id. Pure key
 * metadata: the token only makes the keys, so this runs on SoftHSM alone (the key-taking
 * operations it calls run on NSS in their own suites; the resolution before them is the same code).
 */

const t = useTestService();
const kms = t.client('project-a');

let serial = 0;
async function createKey(fields: Record<string, string> = {}): Promise<string> {
  return createKeyId(kms, `key-${++serial}`, fields);
}

function ok(response: KmsResponse, status = 200): KmsResponse['body'] {
  expect({ status: response.status, body: response.body }).toMatchObject({ status });
  return response.body;
}

async function createAlias(keyId: string, alias: string, client = kms): Promise<KmsResponse> {
  return client.call('aliases', { key_id: keyId, alias });
}

function listAliases(query: Record<string, string> = {}, client = kms): Promise<KmsResponse> {
  const search = new URLSearchParams(query).toString();
  return client.raw(`aliases${search ? `?${search}` : ''}`, { method: 'GET' });
}

function deleteAliases(body: unknown, client = kms): Promise<KmsResponse> {
  return client.raw('aliases', { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

const urnOf = (project: string, alias: string): string => `kms:${t.config.region}:${project}:alias:${alias}`;

/** The audit log's record of one request (an operation's record is written before it is answered). */
function auditRecord(requestId: string | null): Record<string, unknown> {
  const found = readFileSync(t.config.auditLogPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.request_id === requestId);
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('create-alias and list-aliases', () => {
  it('gives a key several aliases, each answered with its URN and times (201), listed by key or for the project', async () => {
    const keyId = await createKey();
    const before = t.clock.now;
    const created = ok(await createAlias(keyId, 'alias/orders-main'), 201);
    expect(created).toEqual({
      domain_id: 'project-a',
      key_id: keyId,
      alias: 'alias/orders-main',
      alias_urn: `kms:${t.config.region}:project-a:alias:alias/orders-main`,
      create_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      update_time: created.create_time,
    });
    expect(Date.parse(created.create_time)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    ok(await createAlias(keyId, 'alias/orders:v2/eu_west-1'), 201);

    const listed = ok(await listAliases({ key_id: keyId }));
    expect(listed).toEqual({ aliases: [created, expect.objectContaining({ alias: 'alias/orders:v2/eu_west-1', key_id: keyId })], page_info: { current_count: 2 } });
    // By alias or URN too; and the project's list holds them.
    expect(ok(await listAliases({ key_id: 'alias/orders-main' })).aliases).toHaveLength(2);
    expect(ok(await listAliases({ key_id: urnOf('project-a', 'alias/orders-main') })).aliases).toHaveLength(2);
    expect(ok(await listAliases()).aliases.map((alias: { alias: string }) => alias.alias)).toEqual(expect.arrayContaining(['alias/orders-main', 'alias/orders:v2/eu_west-1']));
  });

  it('pages by alias: limit, next_marker (the last alias) and marker, to a last page without next_marker', async () => {
    const keyId = await createKey();
    const names = ['alias/page-c', 'alias/page-a', 'alias/page-b'];
    for (const name of names) ok(await createAlias(keyId, name), 201);
    const first = ok(await listAliases({ key_id: keyId, limit: '2' }));
    expect(first.aliases.map((alias: { alias: string }) => alias.alias)).toEqual(['alias/page-a', 'alias/page-b']);
    expect(first.page_info).toEqual({ current_count: 2, next_marker: 'alias/page-b' });
    const second = ok(await listAliases({ key_id: keyId, limit: '2', marker: first.page_info.next_marker }));
    expect(second).toEqual({ aliases: [expect.objectContaining({ alias: 'alias/page-c' })], page_info: { current_count: 1 } });
  });

  it('an alias names one key of its project: a taken one is 400 KMS.1104; another project has its own', async () => {
    const keyId = await createKey();
    const other = await createKey();
    ok(await createAlias(keyId, 'alias/taken'), 201);
    expectKmsError(await createAlias(other, 'alias/taken'), 400, 'KMS.1104');
    expectKmsError(await createAlias(keyId, 'alias/taken'), 400, 'KMS.1104');
    const b = t.client('project-b');
    const theirs = (await b.call('create-key', { key_alias: 'b-key' })).body.key_info.key_id as string;
    ok(await createAlias(theirs, 'alias/taken', b), 201);
    expect(ok(await kms.call('describe-key', { key_id: 'alias/taken' })).key_info.key_id).toBe(keyId);
    expect(ok(await b.call('describe-key', { key_id: 'alias/taken' })).key_info.key_id).toBe(theirs);
    // A key of another project is no key here, by id or by its project's alias.
    expectKmsError(await createAlias(theirs, 'alias/not-mine'), 404, 'KMS.0207');
  });

  it('refuses an alias without the alias/ prefix, with other characters or longer than 255 (KMS.1101), and a key that does not exist (KMS.0207)', async () => {
    const keyId = await createKey();
    for (const alias of ['orders', 'alias/', 'alias/white space', 'alias/ü', `alias/${'x'.repeat(250)}`, 'ALIAS/x']) {
      expectKmsError(await createAlias(keyId, alias), 400, 'KMS.1101');
    }
    ok(await createAlias(keyId, `alias/${'x'.repeat(249)}`), 201);
    expectKmsError(await createAlias('0d0466b0-e727-4d9c-b35d-f84bb474a37f', 'alias/nobody'), 404, 'KMS.0207');
    expectKmsError(await kms.call('aliases', { key_id: keyId }), 400, 'KMS.0204');
  });

  it(`a key holds at most 50 aliases (then 400 KMS.0308); the ones it has keep working`, async () => {
    const keyId = await createKey();
    for (let i = 0; i < 50; i++) ok(await createAlias(keyId, `alias/many-${i}`), 201);
    const refused = await createAlias(keyId, 'alias/many-50');
    expectKmsError(refused, 400, 'KMS.0308');
    expect(refused.body.error_msg).toContain('at most 50 aliases');
    expect(ok(await listAliases({ key_id: keyId })).page_info.current_count).toBe(50);
    expect(ok(await kms.call('describe-key', { key_id: 'alias/many-49' })).key_info.key_id).toBe(keyId);
  });

  it('list-aliases refuses a bad limit (KMS.1601), marker (KMS.0308), key_id (KMS.0205) and unknown parameters; an unknown key is 404', async () => {
    for (const limit of ['0', '101', 'x', '-1', '1.5']) expectKmsError(await listAliases({ limit }), 400, 'KMS.1601');
    expectKmsError(await listAliases({ marker: 'not-an-alias' }), 400, 'KMS.0308');
    expectKmsError(await listAliases({ key_id: 'nonsense' }), 400, 'KMS.0205');
    expectKmsError(await listAliases({ key_id: 'alias/unknown' }), 404, 'KMS.0207');
    expectKmsError(await listAliases({ offset: '1' }), 400, 'KMS.0308');
    expectKmsError(await kms.raw('aliases?limit=1&limit=2', { method: 'GET' }), 400, 'KMS.0308');
  });
});

describe('associate-alias and delete-alias', () => {
  it('associate moves an alias to another key (update_time moves, create_time stays); the move is audited with both keys', async () => {
    const from = await createKey();
    const to = await createKey();
    const created = ok(await createAlias(from, 'alias/moving'), 201);
    const sealed = ok(await kms.call('create-datakey', { key_id: 'alias/moving', datakey_length: '256' }));
    expect(sealed.key_id).toBe(from);
    t.clock.now += 5_000;

    const moved = await kms.call('alias/associate', { alias: 'alias/moving', target_key_id: to });
    expect(ok(moved)).toEqual({ ...created, key_id: to, update_time: expect.any(String) });
    expect(Date.parse(moved.body.update_time)).toBeGreaterThan(Date.parse(created.create_time));
    expect(auditRecord(moved.headers.get('x-request-id'))).toMatchObject({
      action: 'associate-alias',
      permission: 'kms:alias:associate',
      key_id: to,
      previous_key_id: from,
      aliases: ['alias/moving'],
      status: 200,
      result: 'OK',
    });
    // At once, in this process: the alias cache heard the change.
    expect(ok(await kms.call('create-datakey', { key_id: 'alias/moving', datakey_length: '256' })).key_id).toBe(to);
    expect(ok(await listAliases({ key_id: from })).aliases).toEqual([]);
    // The data key sealed before still opens under its own key, named by id.
    expect(ok(await kms.call('decrypt-datakey', { key_id: from, cipher_text: sealed.cipher_text, datakey_cipher_length: '32' })).data_key).toBe(sealed.plain_text);
  });

  it('associate refuses an alias the project does not have (404 KMS.0207) and a target pending deletion (KMS.0210)', async () => {
    const keyId = await createKey();
    expectKmsError(await kms.call('alias/associate', { alias: 'alias/never-made', target_key_id: keyId }), 404, 'KMS.0207');
    ok(await createAlias(keyId, 'alias/stays'), 201);
    const leaving = await createKey();
    ok(await kms.call('schedule-key-deletion', { key_id: leaving, pending_days: '7' }));
    expectKmsError(await kms.call('alias/associate', { alias: 'alias/stays', target_key_id: leaving }), 400, 'KMS.0210');
    expectKmsError(await createAlias(leaving, 'alias/to-leaving'), 400, 'KMS.0210');
    expect(ok(await kms.call('describe-key', { key_id: 'alias/stays' })).key_info.key_id).toBe(keyId);
  });

  it('delete-alias answers 204 without a body, takes the key by alias too, and deletes all or none (KMS.0308); create-alias and delete-alias are audited', async () => {
    const keyId = await createKey();
    const other = await createKey();
    const made = await createAlias(keyId, 'alias/del-a');
    expect(auditRecord(made.headers.get('x-request-id'))).toMatchObject({ action: 'create-alias', permission: 'kms:alias:create', key_id: keyId, aliases: ['alias/del-a'], status: 201 });
    ok(await createAlias(keyId, 'alias/del-b'), 201);
    ok(await createAlias(other, 'alias/del-theirs'), 201);

    expectKmsError(await deleteAliases({ key_id: keyId, aliases: ['alias/del-a', 'alias/del-theirs'] }), 400, 'KMS.0308');
    expectKmsError(await deleteAliases({ key_id: keyId, aliases: ['alias/del-a', 'alias/del-none'] }), 400, 'KMS.0308');
    expect(ok(await listAliases({ key_id: keyId })).page_info.current_count).toBe(2);

    const deleted = await deleteAliases({ key_id: 'alias/del-b', aliases: ['alias/del-a', 'alias/del-b'] });
    expect({ status: deleted.status, body: deleted.body }).toEqual({ status: 204, body: '' });
    expect(auditRecord(deleted.headers.get('x-request-id'))).toMatchObject({ action: 'delete-alias', key_id: keyId, aliases: ['alias/del-a', 'alias/del-b'], status: 204 });
    expectKmsError(await kms.call('describe-key', { key_id: 'alias/del-a' }), 404, 'KMS.0207');
    expect(ok(await listAliases({ key_id: keyId })).aliases).toEqual([]);
    // The name is free again.
    ok(await createAlias(other, 'alias/del-a'), 201);
  });

  it('delete-alias refuses bad bodies with the KMS codes', async () => {
    const keyId = await createKey();
    expectKmsError(await deleteAliases({ key_id: keyId, aliases: [] }), 400, 'KMS.1101');
    expectKmsError(await deleteAliases({ key_id: keyId, aliases: ['nope'] }), 400, 'KMS.1101');
    expectKmsError(await deleteAliases({ key_id: keyId, aliases: 'alias/x' }), 400, 'KMS.1101');
    expectKmsError(await deleteAliases({ key_id: 'nonsense', aliases: ['alias/x'] }), 400, 'KMS.0205');
    expectKmsError(await deleteAliases({ aliases: ['alias/x'] }), 400, 'KMS.0204');
    expectKmsError(await deleteAliases([]), 400, 'KMS.0202');
    expectKmsError(await kms.raw('aliases', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' }), 405, 'KMS.0215');
  });
});

describe('an alias or alias URN wherever a key_id is taken', () => {
  it('data keys, small data, describe-key and key state changes take an alias or URN and answer the key\'s own id', async () => {
    const keyId = await createKey();
    ok(await createAlias(keyId, 'alias/everywhere'), 201);
    const urn = urnOf('project-a', 'alias/everywhere');

    for (const ref of ['alias/everywhere', urn]) {
      const made = ok(await kms.call('create-datakey', { key_id: ref, datakey_length: '256' }));
      expect(made.key_id).toBe(keyId);
      expect(auditRecord((await kms.call('describe-key', { key_id: ref })).headers.get('x-request-id'))).toMatchObject({ action: 'describe-key', key_id: keyId });
      const opened = ok(await kms.call('decrypt-datakey', { key_id: ref, cipher_text: made.cipher_text, datakey_cipher_length: '32' }));
      expect(opened.data_key).toBe(made.plain_text);
      const sealed = ok(await kms.call('encrypt-data', { key_id: ref, plain_text: 'by alias' }));
      expect(sealed.key_id).toBe(keyId);
      expect(ok(await kms.call('decrypt-data', { key_id: ref, cipher_text: sealed.cipher_text })).plain_text).toBe('by alias');
      expect(ok(await kms.call('describe-key', { key_id: ref })).key_info.key_id).toBe(keyId);
    }
    const sealedAudit = await kms.call('create-datakey-without-plaintext', { key_id: 'alias/everywhere' });
    expect(auditRecord(sealedAudit.headers.get('x-request-id'))).toMatchObject({ action: 'create-datakey-without-plaintext', key_id: keyId, result: 'OK' });

    // Transitions read the alias in their own transaction.
    expect(ok(await kms.call('disable-key', { key_id: urn }))).toEqual({ key_info: { key_id: keyId, key_state: '3' } });
    expectKmsError(await kms.call('create-datakey', { key_id: 'alias/everywhere' }), 400, 'KMS.0209');
    expect(ok(await kms.call('enable-key', { key_id: 'alias/everywhere' })).key_info.key_id).toBe(keyId);
    expect(ok(await kms.call('update-key-description', { key_id: 'alias/everywhere', key_description: 'named by alias' })).key_info.key_id).toBe(keyId);
  });

  it('sign and verify take an alias', async () => {
    const keyId = await createKey({ key_spec: 'EC_P256' });
    ok(await createAlias(keyId, 'alias/signer'), 201);
    const message = createHash('sha256').update('by alias').digest().toString('base64');
    const signed = ok(await kms.call('sign', { key_id: 'alias/signer', signing_algorithm: 'ECDSA_SHA_256', message }));
    expect(signed.key_id).toBe(keyId);
    expect(ok(await kms.call('get-publickey', { key_id: 'alias/signer' })).key_id).toBe(keyId);
    expect(ok(await kms.call('verify', { key_id: urnOf('project-a', 'alias/signer'), signing_algorithm: 'ECDSA_SHA_256', message, signature: signed.signature }))).toEqual({ key_id: keyId, signature_valid: 'true' });
  });

  it('grants are made and checked on the key\'s id, whichever name the request gives it', async () => {
    const keyId = await createKey();
    ok(await createAlias(keyId, 'alias/granted'), 201);
    const issued = await t.service.credentials.createToken({ projectId: 'projectgrantee', actions: ['kms:grant:list'] });
    const grantee = kmsClient(() => t.service.url, 'project-a', { 'x-auth-token': issued.token });
    expectKmsError(await grantee.call('create-datakey', { key_id: 'alias/granted' }), 403, 'KMS.0307');

    const grant = ok(await kms.call('create-grant', { key_id: 'alias/granted', grantee_principal: 'projectgrantee', grantee_principal_type: 'domain', operations: ['create-datakey'] }));
    expect(auditRecord((await kms.call('list-grants', { key_id: 'alias/granted' })).headers.get('x-request-id'))).toMatchObject({ action: 'list-grants', key_id: keyId });
    const listed = ok(await kms.call('list-grants', { key_id: urnOf('project-a', 'alias/granted') }));
    expect(listed.grants).toEqual([expect.objectContaining({ grant_id: grant.grant_id, key_id: keyId })]);

    const made = await grantee.call('create-datakey', { key_id: 'alias/granted' });
    expect(ok(made).key_id).toBe(keyId);
    expect(auditRecord(made.headers.get('x-request-id'))).toMatchObject({ key_id: keyId, via_grant: grant.grant_id });
    // An alias that names nothing gives a grant-only caller the same 403 as a key it has no grant on.
    expectKmsError(await grantee.call('create-datakey', { key_id: 'alias/no-such' }), 403, 'KMS.0307');
    expectKmsError(await grantee.call('describe-key', { key_id: 'alias/granted' }), 403, 'KMS.0307');
    expect(ok(await kms.call('revoke-grant', { key_id: 'alias/granted', grant_id: grant.grant_id }))).toEqual({});
  });

  it('an unknown alias, an alias URN of another project or region is 404 KMS.0207; a key_id of no shape is 400 KMS.0205', async () => {
    const keyId = await createKey();
    ok(await createAlias(keyId, 'alias/here'), 201);
    for (const ref of ['alias/nowhere', urnOf('project-b', 'alias/here'), `kms:elsewhere-1:project-a:alias:alias/here`]) {
      for (const operation of ['create-datakey', 'describe-key', 'encrypt-data', 'disable-key']) {
        expectKmsError(await kms.call(operation, { key_id: ref, plain_text: 'x' }), 404, 'KMS.0207');
      }
    }
    for (const ref of ['here', 'alias/', 'kms:r:p:alias:here', `${keyId}x`]) expectKmsError(await kms.call('describe-key', { key_id: ref }), 400, 'KMS.0205');
  });
});

describe('aliases through the official SDK\'s signer', () => {
  it('create-alias (201), list-aliases (GET with a query), associate-alias and delete-alias (DELETE with a body, 204), each signed by the SDK core', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-sdk', actions: ['kms:*'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-sdk', ak: issued.access_key, sk: issued.secret_key });
    const keyOf = async (alias: string): Promise<string> => (await sdk.call('create-key', { key_alias: alias })).body.key_info.key_id as string;
    const first = await keyOf('sdk-first');
    const second = await keyOf('sdk-second');

    const created = await sdk.request({ method: 'POST', url: '/v1.0/{project_id}/kms/aliases', body: { key_id: first, alias: 'alias/sdk' } });
    expect(created).toMatchObject({ status: 201, body: { key_id: first, alias: 'alias/sdk', alias_urn: urnOf('project-sdk', 'alias/sdk') } });
    const listed = await sdk.request({ method: 'GET', url: '/v1.0/{project_id}/kms/aliases', queryParams: { key_id: 'alias/sdk', limit: '10' } });
    expect(listed).toMatchObject({ status: 200, body: { aliases: [{ alias: 'alias/sdk', key_id: first }], page_info: { current_count: 1 } } });
    const moved = await sdk.request({ method: 'POST', url: '/v1.0/{project_id}/kms/alias/associate', body: { alias: 'alias/sdk', target_key_id: second } });
    expect(moved).toMatchObject({ status: 200, body: { key_id: second } });
    expect((await sdk.call('create-datakey', { key_id: urnOf('project-sdk', 'alias/sdk') })).body.key_id).toBe(second);
    const deleted = await sdk.request({ method: 'DELETE', url: '/v1.0/{project_id}/kms/aliases', body: { key_id: second, aliases: ['alias/sdk'] } });
    expect(deleted.status).toBe(204);
    expect(await sdk.call('describe-key', { key_id: 'alias/sdk' })).toMatchObject({ status: 404, errorCode: 'KMS.0207' });
  });
});

describe('permissions', () => {
  it('each alias operation needs its own kms:alias:* action', async () => {
    const keyId = await createKey();
    const reader = t.client('project-a', ['kms:alias:list']);
    expect(ok(await listAliases({}, reader)).aliases).toEqual(expect.any(Array));
    expectKmsError(await createAlias(keyId, 'alias/not-allowed', reader), 403, 'KMS.0307');
    expectKmsError(await reader.call('alias/associate', { alias: 'alias/x', target_key_id: keyId }), 403, 'KMS.0307');
    expectKmsError(await deleteAliases({ key_id: keyId, aliases: ['alias/x'] }, reader), 403, 'KMS.0307');
    const maker = t.client('project-a', ['kms:alias:create']);
    ok(await createAlias(keyId, 'alias/allowed', maker), 201);
    expectKmsError(await listAliases({}, maker), 403, 'KMS.0307');
  });
});

// Last: it moves the service's clock a week on (the SDK's signatures are checked against it).
describe('aliases and the deletion of their key', () => {
  it('a key pending deletion keeps its aliases (KMS.0210 through them; cancelling keeps them); when its window ends they go with it and are free again', async () => {
    const keyId = await createKey();
    ok(await createAlias(keyId, 'alias/doomed'), 201);
    ok(await kms.call('schedule-key-deletion', { key_id: 'alias/doomed', pending_days: '7' }));
    expectKmsError(await kms.call('create-datakey', { key_id: 'alias/doomed' }), 400, 'KMS.0210');
    ok(await kms.call('cancel-key-deletion', { key_id: urnOf('project-a', 'alias/doomed') }));
    expect(ok(await kms.call('describe-key', { key_id: 'alias/doomed' })).key_info).toMatchObject({ key_id: keyId, key_state: '3' });

    ok(await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' }));
    t.clock.advanceDays(7);
    expectKmsError(await kms.call('describe-key', { key_id: 'alias/doomed' }), 404, 'KMS.0207');
    expect(ok(await listAliases()).aliases.map((alias: { alias: string }) => alias.alias)).not.toContain('alias/doomed');
    const heir = await createKey();
    expect(ok(await createAlias(heir, 'alias/doomed'), 201).key_id).toBe(heir);
    expect(ok(await kms.call('describe-key', { key_id: 'alias/doomed' })).key_info.key_id).toBe(heir);
  });
});
