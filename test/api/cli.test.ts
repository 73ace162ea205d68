import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { verifyAuditLog } from '../../src/audit/audit-log';
import { runCli } from '../helpers/cli';
import { expectKmsError, kmsClient } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { startTestService, type TestService } from '../helpers/service';

let t: TestService;

beforeAll(async () => {
  t = await startTestService();
});

afterAll(async () => {
  await t.stop();
});

describe('npm run kms -- credential ..., beside the running service', () => {
  let issued: { access_key: string; secret_key: string; project_id: string; actions: string[] };

  it('creates an AK/SK pair, printed once as JSON, that the official SDK can sign with at once', async () => {
    const result = await runCli(t, ['credential', 'create', '--project', 'cli-project', '--actions', 'kms:*']);
    expect(result.code).toBe(0);
    issued = JSON.parse(result.stdout);
    expect(issued).toEqual({
      access_key: expect.stringMatching(/^[A-Z0-9]{20}$/),
      secret_key: expect.stringMatching(/^[A-Za-z0-9]{40}$/),
      project_id: 'cli-project',
      actions: ['kms:*'],
    });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'cli-project', ak: issued.access_key, sk: issued.secret_key });
    expect((await sdk.call('create-key', { key_alias: 'from-cli-credential' })).status).toBe(200);
  });

  it('creates a token for clients that do not sign, with the actions given', async () => {
    const result = await runCli(t, ['credential', 'create', '--project', 'cli-project', '--actions', 'kms:cmk:list,kms:cmk:get', '--token']);
    expect(result.code).toBe(0);
    const token = JSON.parse(result.stdout);
    expect(token).toMatchObject({ token: expect.stringMatching(/^kmst-/), token_id: expect.stringMatching(/^tok-/), actions: ['kms:cmk:list', 'kms:cmk:get'] });
    // What grants name it by: the id without its hyphen.
    expect(token.principal_id).toBe(token.token_id.replace('-', ''));
    const client = kmsClient(t.service.url, 'cli-project', { 'x-auth-token': token.token });
    expect((await client.call('list-keys')).status).toBe(200);
    expectKmsError(await client.call('create-key', { key_alias: 'not-allowed' }), 403, 'KMS.0307');
  });

  it('lists credentials without any secret', async () => {
    const result = await runCli(t, ['credential', 'list', '--project', 'cli-project']);
    expect(result.code).toBe(0);
    const listed = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    expect(listed.map((entry) => entry.kind).sort()).toEqual(['aksk', 'token']);
    expect(listed.find((entry) => entry.id === issued.access_key)).toMatchObject({ enabled: true, project_id: 'cli-project', principal_id: issued.access_key });
    expect(result.stdout).not.toContain(issued.secret_key);
    for (const entry of listed) expect(Object.keys(entry).sort()).toEqual(['actions', 'created_at', 'description', 'enabled', 'expires_at', 'id', 'kind', 'principal_id', 'project_id']);
  });

  it('disables and deletes a credential, which the running service honours at once', async () => {
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'cli-project', ak: issued.access_key, sk: issued.secret_key });
    expect((await runCli(t, ['credential', 'disable', issued.access_key])).code).toBe(0);
    expect(await sdk.call('list-keys', {})).toMatchObject({ status: 401, errorCode: 'APIGW.0301' });
    expect((await runCli(t, ['credential', 'enable', issued.access_key])).code).toBe(0);
    expect((await sdk.call('list-keys', {})).status).toBe(200);
    expect((await runCli(t, ['credential', 'delete', issued.access_key])).code).toBe(0);
    expect(await sdk.call('list-keys', {})).toMatchObject({ status: 401, errorCode: 'APIGW.0301' });
    const listed = JSON.parse((await runCli(t, ['credential', 'list'])).stdout) as Array<{ id: string }>;
    expect(listed.map((entry) => entry.id)).not.toContain(issued.access_key);
  });

  it('records every credential change in its own chain, audit-cli.log, without a secret', async () => {
    const chain = path.join(t.dataDir, 'audit-cli.log');
    const lines = readFileSync(chain, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
    const operator = { user: userInfo().username, pid: expect.any(Number) };
    expect(lines.map((line) => [line.action, line.result])).toEqual([
      ['create', 'OK'],
      ['create', 'OK'],
      ['disable', 'OK'],
      ['enable', 'OK'],
      ['delete', 'OK'],
    ]);
    expect(lines[0]).toMatchObject({
      event: 'credential-change',
      credential: { id: issued.access_key, kind: 'aksk', project_id: 'cli-project', actions: ['kms:*'] },
      operator,
    });
    expect(lines[1]).toMatchObject({ credential: { id: expect.stringMatching(/^tok-/), kind: 'token', actions: ['kms:cmk:list', 'kms:cmk:get'] } });
    expect(lines[4]).toMatchObject({ action: 'delete', credential: { id: issued.access_key, kind: 'aksk', project_id: 'cli-project' }, operator });
    expect(readFileSync(chain, 'utf8')).not.toContain(issued.secret_key);
    expect(readFileSync(chain, 'utf8')).not.toContain('kmst-');

    const verified = await runCli(t, ['audit', 'verify']);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout).files).toContainEqual(expect.objectContaining({ file: chain, ok: true, records: 5 }));
  });

  it('keeps its chain whole when several runs change credentials at once', async () => {
    const runs = await Promise.all(
      Array.from({ length: 4 }, () => runCli(t, ['credential', 'create', '--project', 'cli-project', '--actions', 'kms:cmk:list', '--token'])),
    );
    expect(runs.map((run) => run.code)).toEqual([0, 0, 0, 0]);
    const tokenIds = runs.map((run) => (JSON.parse(run.stdout) as { token_id: string }).token_id);
    const chain = path.join(t.dataDir, 'audit-cli.log');
    expect(verifyAuditLog(chain)).toMatchObject({ ok: true, records: 9 });
    const recorded = readFileSync(chain, 'utf8').split('\n').filter(Boolean).slice(-4).map((line) => (JSON.parse(line) as { credential: { id: string } }).credential.id);
    expect(recorded.sort()).toEqual([...tokenIds].sort());
  });

  it('records a change asked of a credential that does not exist', async () => {
    expect((await runCli(t, ['credential', 'disable', 'NOSUCHCREDENTIAL'])).code).toBe(1);
    const last = readFileSync(path.join(t.dataDir, 'audit-cli.log'), 'utf8').trim().split('\n').pop()!;
    expect(JSON.parse(last)).toMatchObject({ action: 'disable', credential: { id: 'NOSUCHCREDENTIAL' }, result: 'NOT_FOUND' });
  });

  it('explains its usage, and refuses bad input without a stack trace', async () => {
    const usage = await runCli(t, ['credential', 'create', '--project', 'cli-project']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('needs --actions');
    const badAction = await runCli(t, ['credential', 'create', '--project', 'cli-project', '--actions', 'rm -rf', '--token']);
    expect(badAction.code).toBe(1);
    expect(badAction.stderr).toContain('not an action pattern');
    expect(badAction.stderr).not.toContain('    at ');
    const unknown = await runCli(t, ['credential', 'disable', 'NOSUCHCREDENTIAL']);
    expect(unknown.code).toBe(1);
  });
});
