import { readFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { createKeyId, expectKmsError, kmsClient, type KmsClient, type KmsResponse } from '../helpers/client';
import { useTestService } from '../helpers/service';

/**
 * Grants: a key's administrator lets a principal (a credential, of this project or another, or
 * every credential of a project) use one key for the operations listed, without the permission.
 */

const UNKNOWN_KEY_ID = '0d0466b0-e727-4d9c-b35d-f84bb474a37f';
const UNKNOWN_GRANT_ID = '7c9a3286af4fcca5f0a385ad13e1d21a50e27b6dbcab50f37f30f93b8939827d';
const GRANTS_PER_KEY = 4;

/** A credential of its own (a token), with the principal id grants name it by. */
interface Principal {
  readonly client: KmsClient;
  readonly principalId: string;
  /** A client of the same credential on another project's URL (as a grantee of that project's key). */
  on(project: string): KmsClient;
}

async function principal(project: string, actions: string[]): Promise<Principal> {
  const issued = await t.service.credentials.createToken({ projectId: project, actions });
  const on = (urlProject: string): KmsClient => kmsClient(() => t.service.url, urlProject, { 'x-auth-token': issued.token });
  return { client: on(project), principalId: issued.principal_id, on };
}

let admin: Principal;

async function createKey(alias: string): Promise<string> {
  return createKeyId(admin.client, alias);
}

async function grant(keyId: string, grantee: string, operations: string[], extra: Record<string, unknown> = {}): Promise<string> {
  const created = await admin.client.call('create-grant', { key_id: keyId, grantee_principal: grantee, operations, ...extra });
  expect(created.status).toBe(200);
  expect(created.body).toEqual({ grant_id: expect.stringMatching(/^[0-9a-f]{64}$/) });
  return created.body.grant_id as string;
}

/** The audit lines of a response (the service writes a turn's records at the end of the turn). */
async function auditLines(response: KmsResponse): Promise<Record<string, unknown>[]> {
  await new Promise((resolve) => setImmediate(resolve));
  const requestId = response.headers.get('x-request-id');
  return readFileSync(t.config.auditLogPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.request_id === requestId);
}

/** The one audit line of a response. */
async function auditLine(response: KmsResponse): Promise<Record<string, unknown>> {
  const lines = await auditLines(response);
  expect(lines).toHaveLength(1);
  return lines[0]!;
}

const t = useTestService({ env: { KMS_MAX_GRANTS_PER_KEY: String(GRANTS_PER_KEY) } });

beforeAll(async () => {
  admin = await principal('project-a', ['kms:*']);
});

describe('create-grant and list-grants', () => {
  it('records a grant and lists it with the fields and JSON types the SDK reads', async () => {
    const keyId = await createKey('listed');
    const grantee = await principal('project-a', ['kms:cmk:list']);
    const retiring = await principal('project-b', ['kms:cmk:list']);
    const before = t.clock.now;
    const grantId = await grant(keyId, grantee.principalId, ['create-datakey', 'describe-key', 'create-datakey'], {
      name: 'orders/batch:1',
      retiring_principal: retiring.principalId,
    });
    const listed = await admin.client.call('list-grants', { key_id: keyId });
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({
      grants: [
        {
          key_id: keyId,
          grant_id: grantId,
          grantee_principal: grantee.principalId,
          grantee_principal_type: 'user',
          // A repeated operation counts once.
          operations: ['create-datakey', 'describe-key'],
          issuing_principal: admin.principalId,
          creation_date: String(before),
          name: 'orders/batch:1',
          retiring_principal: retiring.principalId,
        },
      ],
      next_marker: '',
      truncated: 'false',
      total: 1,
    });
  });

  it('names a principal by its credential: an access key as it is, a token by its id without the hyphen', async () => {
    const keyId = await createKey('principal-ids');
    const accessKey = await t.service.credentials.createAccessKey({ projectId: 'project-b', actions: ['kms:cmk:list'] });
    const token = await t.service.credentials.createToken({ projectId: 'project-b', actions: ['kms:cmk:list'] });
    expect(token.principal_id).toBe(token.token_id.replace('-', ''));
    await grant(keyId, accessKey.access_key, ['describe-key']);
    await grant(keyId, token.principal_id, ['describe-key']);
    // The token id itself does not fit the API's pattern: refused as an invalid user id.
    expectKmsError(await admin.client.call('create-grant', { key_id: keyId, grantee_principal: token.token_id, operations: ['describe-key'] }), 400, 'KMS.2402');
  });

  it('pages with limit and marker, oldest first; truncated is the string "true"', async () => {
    const keyId = await createKey('paged');
    const grantee = await principal('project-a', ['kms:cmk:list']);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await grant(keyId, grantee.principalId, ['describe-key'], { name: `g${i}` }));
      t.clock.now += 1;
    }
    const first = await admin.client.call('list-grants', { key_id: keyId, limit: '2' });
    expect(first.body).toMatchObject({ next_marker: '2', truncated: 'true', total: 3 });
    expect(first.body.grants.map((g: { grant_id: string }) => g.grant_id)).toEqual(ids.slice(0, 2));
    const second = await admin.client.call('list-grants', { key_id: keyId, limit: '2', marker: '2' });
    expect(second.body).toMatchObject({ next_marker: '', truncated: 'false', total: 3 });
    expect(second.body.grants.map((g: { grant_id: string }) => g.grant_id)).toEqual(ids.slice(2));
  });

  it('accepts every operation name of the API, encrypt-data and decrypt-data included', async () => {
    const keyId = await createKey('all-operations');
    const all = ['create-datakey', 'create-datakey-without-plaintext', 'encrypt-datakey', 'decrypt-datakey', 'describe-key', 'create-grant', 'retire-grant', 'encrypt-data', 'decrypt-data'];
    await grant(keyId, (await principal('project-a', ['kms:cmk:list'])).principalId, all);
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.grants[0].operations).toEqual(all);
  });

  it('keeps the grants across a restart', async () => {
    const keyId = await createKey('persisted');
    const grantId = await grant(keyId, admin.principalId, ['describe-key']);
    await t.restart();
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.grants.map((g: { grant_id: string }) => g.grant_id)).toEqual([grantId]);
  });
});

describe('what a grant allows', () => {
  it("lets a credential without the permission use that key, for the operations listed, and nothing else", async () => {
    const keyId = await createKey('granted');
    const otherKey = await createKey('not-granted');
    const grantee = await principal('project-a', ['kms:cmk:list']);
    const grantId = await grant(keyId, grantee.principalId, ['create-datakey', 'decrypt-datakey', 'describe-key']);

    const dataKey = await grantee.client.call('create-datakey', { key_id: keyId });
    expect(dataKey.status).toBe(200);
    const opened = await grantee.client.call('decrypt-datakey', { key_id: keyId, cipher_text: dataKey.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.body.data_key).toBe(dataKey.body.plain_text);
    expect((await grantee.client.call('describe-key', { key_id: keyId })).body.key_info.key_id).toBe(keyId);

    // Not another key, not an operation the grant does not list, not a change to the key.
    expectKmsError(await grantee.client.call('create-datakey', { key_id: otherKey }), 403, 'KMS.0307');
    expectKmsError(await grantee.client.call('create-datakey-without-plaintext', { key_id: keyId }), 403, 'KMS.0307');
    expectKmsError(await grantee.client.call('disable-key', { key_id: keyId }), 403, 'KMS.0307');
    expectKmsError(await grantee.client.call('list-grants', { key_id: keyId }), 403, 'KMS.0307');
    expectKmsError(await grantee.client.call('create-key', { key_alias: 'grantee-key' }), 403, 'KMS.0307');

    // The audit trail names the grant that allowed it.
    expect(await auditLine(dataKey)).toMatchObject({ action: 'create-datakey', key_id: keyId, via_grant: grantId, status: 200, result: 'OK' });
  });

  it("lets a credential of another project use the key, through the key's project URL", async () => {
    const keyId = await createKey('cross-project');
    const outsider = await principal('project-b', ['kms:*']);
    const stranger = await principal('project-b', ['kms:*']);
    await grant(keyId, outsider.principalId, ['create-datakey', 'describe-key']);

    expect((await outsider.on('project-a').call('create-datakey', { key_id: keyId })).status).toBe(200);
    expect((await outsider.on('project-a').call('describe-key', { key_id: keyId })).body.key_info.domain_id).toBe('project-a');
    // Its own permissions count only in its own project.
    expectKmsError(await outsider.on('project-a').call('list-keys'), 403, 'KMS.0307');
    expectKmsError(await outsider.on('project-a').call('encrypt-datakey', { key_id: keyId, plain_text: '00', datakey_plain_length: '1' }), 403, 'KMS.0307');

    // Without a grant, the answer does not tell whether the key exists.
    const existing = await stranger.on('project-a').call('describe-key', { key_id: keyId });
    const missing = await stranger.on('project-a').call('describe-key', { key_id: UNKNOWN_KEY_ID });
    expectKmsError(existing, 403, 'KMS.0307');
    expectKmsError(missing, 403, 'KMS.0307');
    expect(existing.body.error_msg).toBe(missing.body.error_msg);
    expect(await auditLine(existing)).toMatchObject({ key_id: null, result: 'KMS.0307' });
  });

  it('with grantee_principal_type domain, lets every credential of that project use it', async () => {
    const keyId = await createKey('domain-grant');
    await grant(keyId, 'projectc', ['describe-key'], { grantee_principal_type: 'domain' });
    for (const member of [await principal('projectc', ['kms:cmk:list']), await principal('projectc', ['kms:dek:create'])]) {
      expect((await member.on('project-a').call('describe-key', { key_id: keyId })).status).toBe(200);
    }
    expectKmsError(await (await principal('projectd', ['kms:*'])).on('project-a').call('describe-key', { key_id: keyId }), 403, 'KMS.0307');
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.grants[0]).toMatchObject({ grantee_principal: 'projectc', grantee_principal_type: 'domain' });
  });

  it('follows the key: a disabled key is refused to the grantee as to anyone (KMS.0209)', async () => {
    const keyId = await createKey('grant-disabled');
    const grantee = await principal('project-b', ['kms:cmk:list']);
    await grant(keyId, grantee.principalId, ['create-datakey']);
    await admin.client.call('disable-key', { key_id: keyId });
    expectKmsError(await grantee.on('project-a').call('create-datakey', { key_id: keyId }), 400, 'KMS.0209');
  });

  it('lets a grantee holding create-grant pass on what it holds, never more', async () => {
    const keyId = await createKey('delegated');
    const delegate = await principal('project-b', ['kms:cmk:list']);
    const third = await principal('project-b', ['kms:cmk:list']);
    await grant(keyId, delegate.principalId, ['create-grant', 'create-datakey']);

    const passedOn = await delegate.on('project-a').call('create-grant', { key_id: keyId, grantee_principal: third.principalId, operations: ['create-datakey'] });
    expect(passedOn.status).toBe(200);
    expect(await auditLine(passedOn)).toMatchObject({ action: 'create-grant', grant_id: passedOn.body.grant_id, via_grant: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect((await third.on('project-a').call('create-datakey', { key_id: keyId })).status).toBe(200);
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.grants[1]).toMatchObject({ issuing_principal: delegate.principalId });

    expectKmsError(
      await delegate.on('project-a').call('create-grant', { key_id: keyId, grantee_principal: third.principalId, operations: ['decrypt-datakey'] }),
      403,
      'KMS.0307',
    );
  });
});

describe('grants made on a grant\'s authority end with it (issue 17)', () => {
  /** A grantee of project p2 holding what the report names, on a key of project-a. */
  async function delegated(alias: string): Promise<{ keyId: string; grantee: Principal; original: string; cipher: string }> {
    const keyId = await createKey(alias);
    const grantee = await principal('p2', ['kms:cmk:list']);
    const original = await grant(keyId, grantee.principalId, ['decrypt-datakey', 'create-grant', 'retire-grant']);
    const dataKey = await admin.client.call('create-datakey', { key_id: keyId });
    expect(dataKey.status).toBe(200);
    return { keyId, grantee, original, cipher: dataKey.body.cipher_text as string };
  }

  const decrypt = (who: Principal, keyId: string, cipher: string): Promise<KmsResponse> =>
    who.on('project-a').call('decrypt-datakey', { key_id: keyId, cipher_text: cipher, datakey_cipher_length: '32' });

  async function made(by: Principal, keyId: string, body: Record<string, unknown>): Promise<string> {
    const created = await by.on('project-a').call('create-grant', { key_id: keyId, ...body });
    expect(created.status).toBe(200);
    return created.body.grant_id as string;
  }

  it('revoking a grant revokes the grants its grantee made with it, for itself and for its whole project, each audited', async () => {
    const { keyId, grantee, original, cipher } = await delegated('cascade-revoke');
    const forItself = await made(grantee, keyId, { grantee_principal: grantee.principalId, operations: ['decrypt-datakey'] });
    const forProject = await made(grantee, keyId, { grantee_principal: 'p2', grantee_principal_type: 'domain', operations: ['decrypt-datakey'] });
    const colleague = await principal('p2', ['kms:cmk:list']);
    expect((await decrypt(colleague, keyId, cipher)).status).toBe(200);

    const revoked = await admin.client.call('revoke-grant', { key_id: keyId, grant_id: original });
    expect(revoked.status).toBe(200);
    expectKmsError(await decrypt(grantee, keyId, cipher), 403, 'KMS.0307');
    expectKmsError(await decrypt(colleague, keyId, cipher), 403, 'KMS.0307');
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.total).toBe(0);

    const lines = await auditLines(revoked);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({ action: 'revoke-grant', key_id: keyId, grant_id: original, status: 200, result: 'OK' });
    expect(lines[0]).not.toHaveProperty('cascaded_from');
    expect(lines.slice(1).map((line) => [line.grant_id, line.cascaded_from]).sort()).toEqual(
      [[forItself, original], [forProject, original]].sort(),
    );
    for (const line of lines.slice(1)) expect(line).toMatchObject({ action: 'revoke-grant', key_id: keyId, status: 200, result: 'OK' });
  });

  it('revokes a chain grant → grant → grant in one go, each cascaded record naming the grant it was made on', async () => {
    const { keyId, grantee, original, cipher } = await delegated('cascade-chain');
    const second = await principal('p2', ['kms:cmk:list']);
    const third = await principal('project-b', ['kms:cmk:list']);
    const middle = await made(grantee, keyId, { grantee_principal: second.principalId, operations: ['decrypt-datakey', 'create-grant'] });
    const last = await made(second, keyId, { grantee_principal: third.principalId, operations: ['decrypt-datakey'] });
    expect((await decrypt(third, keyId, cipher)).status).toBe(200);

    // The middle grant's own audit record names the grant it was made on as via_grant.
    const revoked = await admin.client.call('revoke-grant', { key_id: keyId, grant_id: original });
    expect(revoked.status).toBe(200);
    for (const who of [grantee, second, third]) expectKmsError(await decrypt(who, keyId, cipher), 403, 'KMS.0307');
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.total).toBe(0);
    const cascaded = (await auditLines(revoked)).slice(1).map((line) => [line.grant_id, line.cascaded_from]);
    expect(cascaded.sort()).toEqual([[middle, original], [last, middle]].sort());
  });

  it('revoking a grant in the middle of a chain ends it and what was made on it, not the grant above', async () => {
    const { keyId, grantee, cipher } = await delegated('cascade-middle');
    const second = await principal('p2', ['kms:cmk:list']);
    const third = await principal('project-b', ['kms:cmk:list']);
    const middle = await made(grantee, keyId, { grantee_principal: second.principalId, operations: ['decrypt-datakey', 'create-grant'] });
    await made(second, keyId, { grantee_principal: third.principalId, operations: ['decrypt-datakey'] });
    expect((await admin.client.call('revoke-grant', { key_id: keyId, grant_id: middle })).status).toBe(200);
    expect((await decrypt(grantee, keyId, cipher)).status).toBe(200);
    expectKmsError(await decrypt(third, keyId, cipher), 403, 'KMS.0307');
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.total).toBe(1);
  });

  it('retiring a grant, by its grantee, revokes the grants made with it too', async () => {
    const { keyId, grantee, original, cipher } = await delegated('cascade-retire');
    const forItself = await made(grantee, keyId, { grantee_principal: grantee.principalId, operations: ['decrypt-datakey'] });
    const retired = await grantee.on('project-a').call('retire-grant', { key_id: keyId, grant_id: original });
    expect(retired.status).toBe(200);
    expectKmsError(await decrypt(grantee, keyId, cipher), 403, 'KMS.0307');
    const lines = await auditLines(retired);
    expect(lines).toEqual([
      expect.objectContaining({ action: 'retire-grant', grant_id: original, via_grant: original, result: 'OK' }),
      expect.objectContaining({ action: 'retire-grant', grant_id: forItself, cascaded_from: original, result: 'OK' }),
    ]);
  });

  it('a grant made on a grant holds no operation that grant does not list: 403 KMS.0307, nothing made', async () => {
    const { keyId, grantee } = await delegated('cascade-exceed');
    const other = await principal('p2', ['kms:cmk:list']);
    // Not even with a second grant listing the operation: a grant is made on one grant's authority.
    await grant(keyId, grantee.principalId, ['create-datakey']);
    for (const operations of [['create-datakey'], ['decrypt-datakey', 'describe-key'], ['decrypt-datakey', 'create-datakey']]) {
      expectKmsError(await grantee.on('project-a').call('create-grant', { key_id: keyId, grantee_principal: other.principalId, operations }), 403, 'KMS.0307');
    }
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.total).toBe(2);
    // What the grant lists, or less, it may pass on.
    await made(grantee, keyId, { grantee_principal: other.principalId, operations: ['decrypt-datakey', 'retire-grant'] });
  });
});

describe('revoke-grant, retire-grant and list-retirable-grants', () => {
  it('revoke-grant ends a grant at once; the grant is then unknown (KMS.2501)', async () => {
    const keyId = await createKey('revoked');
    const grantee = await principal('project-a', ['kms:cmk:list']);
    const grantId = await grant(keyId, grantee.principalId, ['create-datakey']);
    expect((await grantee.client.call('create-datakey', { key_id: keyId })).status).toBe(200);

    const revoked = await admin.client.call('revoke-grant', { key_id: keyId, grant_id: grantId.toUpperCase() });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({});
    expect(await auditLine(revoked)).toMatchObject({ action: 'revoke-grant', permission: 'kms:grant:revoke', key_id: keyId, grant_id: grantId });
    expectKmsError(await grantee.client.call('create-datakey', { key_id: keyId }), 403, 'KMS.0307');
    expectKmsError(await admin.client.call('revoke-grant', { key_id: keyId, grant_id: grantId }), 400, 'KMS.2501');
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.total).toBe(0);
  });

  it('the retiring principal retires a grant without any permission, from its own project; it lists what it may retire', async () => {
    const keyId = await createKey('retired');
    const grantee = await principal('project-a', ['kms:cmk:list']);
    const retiring = await principal('project-b', ['kms:grant:list']);
    const grantId = await grant(keyId, grantee.principalId, ['describe-key'], { retiring_principal: retiring.principalId });

    const retirable = await retiring.client.call('list-retirable-grants', {});
    expect(retirable.status).toBe(200);
    expect(retirable.body).toMatchObject({ truncated: 'false', total: 1, next_marker: '' });
    expect(retirable.body.grants).toEqual([expect.objectContaining({ grant_id: grantId, key_id: keyId, retiring_principal: retiring.principalId })]);
    // Nobody else sees it there.
    expect((await admin.client.call('list-retirable-grants')).body.grants.map((g: { grant_id: string }) => g.grant_id)).not.toContain(grantId);

    const retired = await retiring.on('project-a').call('retire-grant', { key_id: keyId, grant_id: grantId });
    expect(retired.status).toBe(200);
    expect(await auditLine(retired)).toMatchObject({ action: 'retire-grant', grant_id: grantId, via_grant: grantId, result: 'OK' });
    expectKmsError(await grantee.client.call('describe-key', { key_id: keyId }), 403, 'KMS.0307');
    expect((await retiring.client.call('list-retirable-grants')).body.total).toBe(0);
  });

  it('the grantee retires its grant when the grant lists retire-grant, and not otherwise', async () => {
    const keyId = await createKey('self-retired');
    const grantee = await principal('project-b', ['kms:cmk:list']);
    const withRetire = await grant(keyId, grantee.principalId, ['describe-key', 'retire-grant']);
    const withoutRetire = await grant(keyId, grantee.principalId, ['describe-key']);
    expectKmsError(await grantee.on('project-a').call('retire-grant', { key_id: keyId, grant_id: withoutRetire }), 403, 'KMS.0307');
    expect((await grantee.on('project-a').call('retire-grant', { key_id: keyId, grant_id: withRetire })).status).toBe(200);
    // Holding no grant it may retire, it is refused as for any key (whether the key exists or not).
    expectKmsError(await grantee.on('project-a').call('retire-grant', { key_id: keyId, grant_id: withoutRetire }), 403, 'KMS.0307');
    expectKmsError(await grantee.on('project-a').call('retire-grant', { key_id: UNKNOWN_KEY_ID, grant_id: withoutRetire }), 403, 'KMS.0307');
  });

  it('the key administrator (kms:grant:retire) retires any grant of its keys', async () => {
    const keyId = await createKey('admin-retired');
    const grantId = await grant(keyId, (await principal('project-b', ['kms:cmk:list'])).principalId, ['describe-key']);
    expect((await admin.client.call('retire-grant', { key_id: keyId, grant_id: grantId })).status).toBe(200);
    expect((await admin.client.call('list-grants', { key_id: keyId })).body.total).toBe(0);
  });

  it('list-retirable-grants needs kms:grant:list in the caller\'s own project', async () => {
    expectKmsError(await (await principal('project-b', ['kms:cmk:list'])).client.call('list-retirable-grants'), 403, 'KMS.0307');
    expectKmsError(await (await principal('project-b', ['kms:grant:list'])).on('project-a').call('list-retirable-grants'), 403, 'KMS.0307');
  });
});

describe('grants go with their key', () => {
  it('a key pending deletion takes no new grant (KMS.0210); once its window ends its grants are gone, and the sweep deletes them', async () => {
    const keyId = await createKey('deleted-with-grants');
    const retiring = await principal('project-b', ['kms:grant:list']);
    await grant(keyId, retiring.principalId, ['describe-key'], { retiring_principal: retiring.principalId });
    await admin.client.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' });
    expectKmsError(await admin.client.call('create-grant', { key_id: keyId, grantee_principal: retiring.principalId, operations: ['describe-key'] }), 400, 'KMS.0210');
    expect((await retiring.client.call('list-retirable-grants')).body.total).toBe(1);

    t.clock.advanceDays(8);
    expect((await retiring.client.call('list-retirable-grants')).body.total).toBe(0);
    expectKmsError(await retiring.on('project-a').call('describe-key', { key_id: keyId }), 403, 'KMS.0307');
    await t.service.maintenance.run();
    const db = new Database(t.config.databasePath, { readonly: true });
    try {
      expect(db.prepare('SELECT count(*) AS n FROM grants WHERE key_id = ?').get(keyId)).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});

describe('what create-grant refuses', () => {
  let keyId: string;
  let grantee: string;

  beforeAll(async () => {
    keyId = await createKey('refusals');
    grantee = (await principal('project-a', ['kms:cmk:list'])).principalId;
  });

  const create = (body: Record<string, unknown>): Promise<KmsResponse> =>
    admin.client.call('create-grant', { key_id: keyId, grantee_principal: grantee, operations: ['describe-key'], ...body });

  it('create-grant alone: KMS.2401', async () => {
    expectKmsError(await create({ operations: ['create-grant'] }), 400, 'KMS.2401');
    expectKmsError(await create({ operations: ['create-grant', 'create-grant'] }), 400, 'KMS.2401');
  });

  it('a principal id outside the pattern, or naming no credential: KMS.2402', async () => {
    expectKmsError(await create({ grantee_principal: 'not-alphanumeric' }), 400, 'KMS.2402');
    expectKmsError(await create({ grantee_principal: 'x'.repeat(65) }), 400, 'KMS.2402');
    expectKmsError(await create({ grantee_principal: 'AAAAAAAAAAAAAAAAAAAA' }), 400, 'KMS.2402');
    expectKmsError(await create({ retiring_principal: 'tok0000000000000000' }), 400, 'KMS.2402');
    expectKmsError(await create({ retiring_principal: '' }), 400, 'KMS.2402');
  });

  it('more grants on one key than KMS_MAX_GRANTS_PER_KEY: KMS.2404; a revoked one frees its place', async () => {
    const full = await createKey('full-of-grants');
    const ids: string[] = [];
    for (let i = 0; i < GRANTS_PER_KEY; i++) ids.push(await grant(full, grantee, ['describe-key']));
    expectKmsError(await admin.client.call('create-grant', { key_id: full, grantee_principal: grantee, operations: ['describe-key'] }), 400, 'KMS.2404');
    // Another key has its own quota.
    expect((await create({})).status).toBe(200);
    await admin.client.call('revoke-grant', { key_id: full, grant_id: ids[0] });
    expect((await admin.client.call('create-grant', { key_id: full, grantee_principal: grantee, operations: ['describe-key'] })).status).toBe(200);
  });

  it('bad fields: an unknown operation, an empty list, a grantee type, a name (KMS.0308); a missing field (KMS.0204); the key id (KMS.0205)', async () => {
    expectKmsError(await create({ operations: ['disable-key'] }), 400, 'KMS.0308');
    expectKmsError(await create({ operations: [] }), 400, 'KMS.0308');
    expectKmsError(await create({ operations: 'describe-key' }), 400, 'KMS.0308');
    expectKmsError(await create({ grantee_principal_type: 'group' }), 400, 'KMS.0308');
    expectKmsError(await create({ name: 'no spaces allowed' }), 400, 'KMS.0308');
    expectKmsError(await admin.client.call('create-grant', { key_id: keyId, grantee_principal: grantee }), 400, 'KMS.0204');
    expectKmsError(await create({ key_id: 'not-a-key' }), 400, 'KMS.0205');
    expectKmsError(await create({ sequence: 'short' }), 400, 'KMS.0206');
  });

  it('an unknown key: KMS.0207; without the permission: KMS.0307', async () => {
    expectKmsError(await create({ key_id: UNKNOWN_KEY_ID }), 404, 'KMS.0207');
    const dekOnly = await principal('project-a', ['kms:dek:*']);
    expectKmsError(await dekOnly.client.call('create-grant', { key_id: keyId, grantee_principal: grantee, operations: ['describe-key'] }), 403, 'KMS.0307');
  });
});

describe('what revoke-grant, retire-grant and the lists refuse', () => {
  let keyId: string;
  let grantId: string;

  beforeAll(async () => {
    keyId = await createKey('grant-refusals');
    grantId = await grant(keyId, (await principal('project-a', ['kms:cmk:list'])).principalId, ['describe-key']);
  });

  it.each(['revoke-grant', 'retire-grant'])('%s: a malformed or unknown grant id (KMS.2501), a grant of another key (KMS.2502)', async (operation) => {
    expectKmsError(await admin.client.call(operation, { key_id: keyId, grant_id: 'abc' }), 400, 'KMS.2501');
    expectKmsError(await admin.client.call(operation, { key_id: keyId, grant_id: UNKNOWN_GRANT_ID }), 400, 'KMS.2501');
    const otherKey = await createKey(`other-of-${operation}`);
    expectKmsError(await admin.client.call(operation, { key_id: otherKey, grant_id: grantId }), 400, 'KMS.2502');
    expectKmsError(await admin.client.call(operation, { key_id: UNKNOWN_KEY_ID, grant_id: grantId }), 404, 'KMS.0207');
    expectKmsError(await admin.client.call(operation, { key_id: keyId }), 400, 'KMS.0204');
  });

  it("another project's grant is unknown here (KMS.2501)", async () => {
    const admin2 = await principal('project-e', ['kms:*']);
    const theirKey = (await admin2.client.call('create-key', { key_alias: 'theirs' })).body.key_info.key_id;
    const theirGrant = (await admin2.client.call('create-grant', { key_id: theirKey, grantee_principal: admin.principalId, operations: ['describe-key'] })).body.grant_id;
    expectKmsError(await admin.client.call('revoke-grant', { key_id: keyId, grant_id: theirGrant }), 400, 'KMS.2501');
  });

  it('revoke-grant needs the permission: a grantee is refused (KMS.0307)', async () => {
    const grantee = await principal('project-a', ['kms:cmk:list']);
    const own = await grant(keyId, grantee.principalId, ['describe-key', 'retire-grant', 'create-grant']);
    expectKmsError(await grantee.client.call('revoke-grant', { key_id: keyId, grant_id: own }), 403, 'KMS.0307');
  });

  it('list-grants: an unknown key (KMS.0207), a bad limit (KMS.1601) or marker (KMS.1602), no key_id (KMS.0204)', async () => {
    expectKmsError(await admin.client.call('list-grants', { key_id: UNKNOWN_KEY_ID }), 404, 'KMS.0207');
    expectKmsError(await admin.client.call('list-grants', { key_id: keyId, limit: '0' }), 400, 'KMS.1601');
    expectKmsError(await admin.client.call('list-grants', { key_id: keyId, limit: '1001' }), 400, 'KMS.1601');
    expectKmsError(await admin.client.call('list-grants', { key_id: keyId, limit: 'ten' }), 400, 'KMS.1601');
    expectKmsError(await admin.client.call('list-grants', { key_id: keyId, marker: '-1' }), 400, 'KMS.1602');
    expectKmsError(await admin.client.call('list-grants', {}), 400, 'KMS.0204');
    expectKmsError(await admin.client.call('list-retirable-grants', { limit: '0' }), 400, 'KMS.1601');
  });
});
