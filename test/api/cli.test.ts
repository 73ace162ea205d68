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
    const client = kmsClient(t.service.url, 'cli-project', { 'x-auth-token': token.token });
    expect((await client.call('list-keys')).status).toBe(200);
    expectKmsError(await client.call('create-key', { key_alias: 'not-allowed' }), 403, 'KMS.0307');
  });

  it('lists credentials without any secret', async () => {
    const result = await runCli(t, ['credential', 'list', '--project', 'cli-project']);
    expect(result.code).toBe(0);
    const listed = JSON.parse(result.stdout) as Array<Record<string, unknown>>;
    expect(listed.map((entry) => entry.kind).sort()).toEqual(['aksk', 'token']);
    expect(listed.find((entry) => entry.id === issued.access_key)).toMatchObject({ enabled: true, project_id: 'cli-project' });
    expect(result.stdout).not.toContain(issued.secret_key);
    for (const entry of listed) expect(Object.keys(entry).sort()).toEqual(['actions', 'created_at', 'description', 'enabled', 'expires_at', 'id', 'kind', 'project_id']);
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
