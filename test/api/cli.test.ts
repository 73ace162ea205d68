import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { verifyAuditLog } from '../../src/audit/audit-log';
import { COMMANDS, helpText } from '../../src/cli/usage';
import { runCli, runCliOnTerminal, type CliResult } from '../helpers/cli';
import { expectKmsError, kmsClient } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';

// Every run of the tool is a process of its own that compiles it (tsx) and opens the HSM: a test of
// several runs in a row can take longer than the default 30 s on a loaded two-core machine.
jest.setTimeout(120_000);

const t = useTestService();

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

    const table = await runCli(t, ['credential', 'list', '--project', 'cli-project', '--table']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID +KIND +PROJECT +ACTIONS +ENABLED +EXPIRES +DESCRIPTION$/);
    expect(table.stdout).toMatch(new RegExp(`^${issued.access_key} +aksk +cli-project +kms:\\* +yes +- +-$`, 'm'));
    expect(table.stdout).not.toContain(issued.secret_key);
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
    // After the two records of the admin credential the service's first start made (test/api/audit.test.ts).
    const lines = readFileSync(chain, 'utf8').split('\n').filter(Boolean).slice(2).map((line) => JSON.parse(line) as Record<string, unknown>);
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
    expect(JSON.parse(verified.stdout).files).toContainEqual(expect.objectContaining({ file: chain, ok: true, records: 2 + 5 }));
  });

  it('keeps its chain whole when several runs change credentials at once', async () => {
    const runs = await Promise.all(
      Array.from({ length: 4 }, () => runCli(t, ['credential', 'create', '--project', 'cli-project', '--actions', 'kms:cmk:list', '--token'])),
    );
    expect(runs.map((run) => run.code)).toEqual([0, 0, 0, 0]);
    const tokenIds = runs.map((run) => (JSON.parse(run.stdout) as { token_id: string }).token_id);
    const chain = path.join(t.dataDir, 'audit-cli.log');
    expect(verifyAuditLog(chain)).toMatchObject({ ok: true, records: 2 + 9 });
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
    expect(badAction.code).toBe(2);
    expect(badAction.stderr).toContain('not an action pattern');
    expect(badAction.stderr).not.toContain('    at ');
    const unknown = await runCli(t, ['credential', 'disable', 'NOSUCHCREDENTIAL']);
    expect(unknown.code).toBe(1);
  });
});

describe('npm run kms -- credential create --actions, against the permission names', () => {
  const chainLength = (): number => {
    const chain = path.join(t.dataDir, 'audit-cli.log');
    return existsSync(chain) ? readFileSync(chain, 'utf8').split('\n').filter(Boolean).length : 0;
  };

  it('refuses a pattern that matches no permission, in one line naming the permissions and wildcards, and records nothing', async () => {
    const before = chainLength();
    const bogus = await runCli(t, ['credential', 'create', '--project', 'cli-project', '--actions', 'kms:cmk:list,kms:bogus', '--token']);
    expect(bogus.code).toBe(2);
    expect(bogus.stdout).toBe('');
    expect(bogus.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(bogus.stderr).toMatch(/^kms: kms:bogus matches no permission; the permissions are kms:cmk:create, .*kms:dek:crypto.*, with \* as a wildcard \(kms:\*, kms:cmk:\*, kms:dek:\*, kms:grant:\*, kms:alias:\*, kms:cmkTag:\*\)\n$/);
    const typo = await runCli(t, ['credential', 'create', '--project', 'cli-project', '--actions', 'kms:cmk:creat']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('kms:cmk:creat matches no permission');
    expect(chainLength()).toBe(before);
    const listed = JSON.parse((await runCli(t, ['credential', 'list', '--project', 'cli-project'])).stdout) as Array<{ actions: string[] }>;
    expect(listed.flatMap((entry) => entry.actions)).not.toContain('kms:bogus');
  });

  it('accepts wildcards that match permissions', async () => {
    const made = await runCli(t, ['credential', 'create', '--project', 'cli-project', '--actions', 'kms:grant:*,kms:dek:cr*', '--token']);
    expect(made.code).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ actions: ['kms:grant:*', 'kms:dek:cr*'] });
  });
});

describe('npm run kms -- help', () => {
  it('prints the usage of every command on standard output, exit code 0, for help, --help and -h', async () => {
    const runs = await Promise.all([runCli(t, ['help']), runCli(t, ['--help']), runCli(t, ['-h'])]);
    for (const run of runs) {
      expect(run).toMatchObject({ code: 0, stderr: '' });
      expect(run.stdout).toBe(runs[0]!.stdout);
    }
    for (const [group, commands] of Object.entries(COMMANDS)) {
      for (const command of Object.keys(commands)) expect(runs[0]!.stdout).toContain(`kms ${group} ${command} `);
    }
    expect(runs[0]!.stdout).toContain('Exit codes: 0 done; 1 the KMS refused or failed');
  });

  it('has help for each command, the same from help COMMAND and COMMAND --help', async () => {
    for (const [group, commands] of Object.entries(COMMANDS)) {
      for (const [command, help] of Object.entries(commands)) {
        const text = helpText([group, command]);
        expect(text).toContain(`kms ${group} ${command} ${help.args}`);
        expect(text).toContain(help.summary);
      }
    }
    const [asked, flagged, short, group] = await Promise.all([
      runCli(t, ['help', 'key', 'schedule-deletion']),
      runCli(t, ['key', 'schedule-deletion', '--help']),
      runCli(t, ['key', 'rotate', '-h']),
      runCli(t, ['key', '--help']),
    ]);
    expect(asked).toMatchObject({ code: 0, stderr: '', stdout: helpText(['key', 'schedule-deletion']) });
    expect(flagged).toMatchObject({ code: 0, stdout: asked.stdout });
    expect(short).toMatchObject({ code: 0, stdout: helpText(['key', 'rotate']) });
    expect(group).toMatchObject({ code: 0, stdout: helpText(['key']) });
    expect(group.stdout).toContain('kms key rotation-status --project ID KEY');
  });

  it('refuses an unknown command or option with the usage on standard error, exit code 2', async () => {
    const [command, keyCommand, option, helpOfNothing, none] = await Promise.all([
      runCli(t, ['keys']),
      runCli(t, ['key', 'destroy', 'x']),
      runCli(t, ['key', 'describe', '--project', 'p', '--days', '7', 'k']),
      runCli(t, ['help', 'nothing']),
      runCli(t, []),
    ]);
    expect(command).toMatchObject({ code: 2, stdout: '' });
    expect(command.stderr).toBe(`kms: unknown command: keys\n\n${helpText([])}`);
    expect(keyCommand).toMatchObject({ code: 2, stdout: '', stderr: `kms: unknown key command: destroy\n\n${helpText(['key'])}` });
    expect(option).toMatchObject({ code: 2, stdout: '' });
    expect(option.stderr).toMatch(/^kms: Unknown option '--days'/);
    expect(option.stderr).toContain(helpText(['key', 'describe']));
    expect(helpOfNothing).toMatchObject({ code: 2, stdout: '' });
    expect(none).toMatchObject({ code: 2, stdout: '' });
    expect(none.stderr).toContain('kms: no command given');
    for (const run of [command, keyCommand, option, helpOfNothing, none]) expect(run.stderr).not.toContain('    at ');
  });
});

describe('npm run kms -- key ..., beside the running service', () => {
  const project = 'cli-keys';
  const api = t.client(project);
  let keyId: string;

  /** The tool's records of key operations, in order. */
  const operationRecords = (): Array<Record<string, unknown>> =>
    readFileSync(path.join(t.dataDir, 'audit-cli.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.event === 'operation');
  const key = (...args: string[]): Promise<CliResult> => runCli(t, ['key', args[0]!, '--project', project, ...args.slice(1)]);

  it('creates a key the running service describes and uses at once', async () => {
    const created = await key('create', '--alias', 'cli-made', '--description', 'made by the operator');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    const response = JSON.parse(created.stdout) as { key_info: { key_id: string; domain_id: string } };
    expect(response).toEqual({ key_info: { key_id: expect.stringMatching(/^[0-9a-f-]{36}$/), domain_id: project } });
    keyId = response.key_info.key_id;
    const described = await api.call('describe-key', { key_id: keyId });
    expect(described.status).toBe(200);
    expect(described.body.key_info).toMatchObject({ key_alias: 'cli-made', key_description: 'made by the operator', key_state: '2' });
    expect((await api.call('create-datakey', { key_id: keyId, datakey_length: '256' })).status).toBe(200);
  });

  it('describes and lists keys, the service\'s included, by id or alias, as JSON or as a table', async () => {
    const fromApi = (await api.call('create-key', { key_alias: 'api-made' })).body.key_info.key_id as string;
    const [byAlias, byId, table, listed, listedTable] = await Promise.all([
      key('describe', 'api-made'),
      key('describe', keyId),
      key('describe', 'cli-made', '--table'),
      key('list', '--state', 'enabled'),
      key('list', '--table'),
    ]);
    expect(byAlias.code).toBe(0);
    expect(JSON.parse(byAlias.stdout)).toEqual((await api.call('describe-key', { key_id: fromApi })).body);
    expect(JSON.parse(byId.stdout).key_info).toMatchObject({ key_id: keyId, key_alias: 'cli-made' });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^key_id +${keyId}$`, 'm'));
    expect(table.stdout).toMatch(/^alias +cli-made$/m);
    expect(table.stdout).toMatch(/^state +enabled$/m);
    expect(table.stdout).not.toContain('{');
    const list = JSON.parse(listed.stdout) as { keys: string[]; total: number };
    expect(list.keys.sort()).toEqual([keyId, fromApi].sort());
    expect(listedTable.stdout.split('\n')[0]).toMatch(/^KEY ID +ALIAS +STATE +CREATED +ROTATION +DESCRIPTION$/);
    expect(listedTable.stdout).toMatch(new RegExp(`^${keyId} +cli-made +enabled +\\d{4}-\\d\\d-\\d\\dT`, 'm'));

    // On a terminal the table is the default; --json still gives JSON there.
    const [onTerminal, jsonOnTerminal] = await Promise.all([
      runCliOnTerminal(t, ['key', 'describe', '--project', project, 'cli-made']),
      runCliOnTerminal(t, ['key', 'describe', '--project', project, 'cli-made', '--json']),
    ]);
    expect(onTerminal.code).toBe(0);
    expect(onTerminal.stdout.replace(/\r\n/g, '\n')).toBe(table.stdout);
    expect(JSON.parse(jsonOnTerminal.stdout)).toEqual(JSON.parse(byId.stdout));
  });

  it('disables a key, which the running service refuses to use at once, and enables it again', async () => {
    const disabled = await key('disable', 'cli-made');
    expect(disabled.code).toBe(0);
    expect(JSON.parse(disabled.stdout)).toEqual({ key_info: { key_id: keyId, key_state: '3' } });
    expectKmsError(await api.call('create-datakey', { key_id: keyId, datakey_length: '256' }), 400, 'KMS.0209');
    const again = await key('disable', keyId);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^kms: KMS\.1301 /);
    expect((await key('enable', keyId)).code).toBe(0);
    expect((await api.call('create-datakey', { key_id: keyId, datakey_length: '256' })).status).toBe(200);
  });

  it('schedules a deletion (unusable at once) and cancels it, leaving the key disabled', async () => {
    const tooSoon = await key('schedule-deletion', keyId, '--days', '3');
    expect(tooSoon.code).toBe(1);
    expect(tooSoon.stderr).toMatch(/^kms: KMS\.1401 /);
    const scheduled = await key('schedule-deletion', keyId, '--days', '7');
    expect(scheduled.code).toBe(0);
    expect(JSON.parse(scheduled.stdout)).toEqual({ key_id: keyId, key_state: '4' });
    expectKmsError(await api.call('create-datakey', { key_id: keyId, datakey_length: '256' }), 400, 'KMS.0210');
    const described = (await api.call('describe-key', { key_id: keyId })).body.key_info;
    expect(Number(described.scheduled_deletion_date)).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    const cancelled = await key('cancel-deletion', keyId, '--table');
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(/^key_state +disabled$/m);
    expect((await api.call('describe-key', { key_id: keyId })).body.key_info.key_state).toBe('3');
    expect((await key('enable', keyId)).code).toBe(0);
  });

  it('turns rotation on, sets its interval, rotates now and turns it off, as the API shows', async () => {
    const before = await api.call('create-datakey', { key_id: keyId, datakey_length: '256' });
    expect((await key('enable-rotation', keyId)).code).toBe(0);
    expect((await key('rotation-interval', keyId, '--days', '90')).code).toBe(0);
    expect((await api.call('get-key-rotation-status', { key_id: keyId })).body).toMatchObject({ key_rotation_enabled: true, rotation_interval: 90 });
    const rotated = await key('rotate', keyId);
    expect(rotated.code).toBe(0);
    expect(JSON.parse(rotated.stdout)).toEqual({ key_id: keyId });
    const status = await key('rotation-status', keyId);
    expect(JSON.parse(status.stdout)).toMatchObject({ key_rotation_enabled: true, rotation_interval: 90, number_of_rotations: 1 });
    expect((await api.call('get-key-rotation-status', { key_id: keyId })).body.number_of_rotations).toBe(1);
    // The data key sealed before the rotation still opens.
    const opened = await api.call('decrypt-datakey', { key_id: keyId, cipher_text: before.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.status).toBe(200);
    expect((await key('disable-rotation', keyId)).code).toBe(0);
    expect((await api.call('get-key-rotation-status', { key_id: keyId })).body.key_rotation_enabled).toBe(false);
    const badInterval = await key('rotation-interval', keyId, '--days', '10');
    expect(badInterval.code).toBe(1);
    expect(badInterval.stderr).toMatch(/^kms: KMS\.\d{4} /);
  });

  it('refuses what the API refuses, with its code (exit code 1), and a wrong command line with exit code 2', async () => {
    const [badAlias, duplicate, unknownKey, noAlias, noKey, noDays, noProject, both] = await Promise.all([
      key('create', '--alias', 'not an alias!'),
      key('create', '--alias', 'cli-made'),
      key('describe', 'no-such-alias'),
      key('create'),
      key('describe'),
      key('schedule-deletion', keyId),
      runCli(t, ['key', 'list']),
      key('list', '--json', '--table'),
    ]);
    expect(badAlias).toMatchObject({ code: 1, stdout: '' });
    expect(badAlias.stderr).toMatch(/^kms: KMS\.1101 .*key_alias: must match pattern/);
    expect(duplicate.code).toBe(1);
    expect(duplicate.stderr).toMatch(/^kms: KMS\.1104 /);
    expect(unknownKey.code).toBe(1);
    expect(unknownKey.stderr).toMatch(/^kms: KMS\.0207 /);
    for (const [run, message] of [
      [noAlias, 'key create needs --alias'],
      [noKey, 'key describe needs the key'],
      [noDays, 'schedule-deletion needs --days N'],
      [noProject, 'key list needs --project'],
      [both, '--json and --table exclude each other'],
    ] as const) {
      expect(run).toMatchObject({ code: 2, stdout: '' });
      expect(run.stderr).toContain(message);
    }
    // Keys the API refused were never made.
    expect((await api.call('list-keys', {})).body.total).toBe(2);
  });

  it('records each key operation in audit-cli.log as the API records it, with the operator as the principal', async () => {
    const records = operationRecords();
    const user = userInfo().username;
    // Runs made at once (Promise.all) record in any order: compare the sorted lists.
    expect(records.map((record) => `${String(record.action)} ${String(record.result)}`).sort()).toEqual(
      [
        'create-key OK',
        // By alias, by id, as a table; then twice on a terminal.
        'describe-key OK',
        'describe-key OK',
        'describe-key OK',
        'describe-key OK',
        'describe-key OK',
        'list-keys OK',
        'list-keys OK',
        'disable-key OK',
        'disable-key KMS.1301',
        'enable-key OK',
        'schedule-key-deletion KMS.1401',
        'schedule-key-deletion OK',
        'cancel-key-deletion OK',
        'enable-key OK',
        'enable-key-rotation OK',
        'update-key-rotation-interval OK',
        'rotate-on-demand OK',
        'get-key-rotation-status OK',
        'disable-key-rotation OK',
        'update-key-rotation-interval KMS.3001',
        'create-key KMS.1101',
        'create-key KMS.1104',
        'describe-key KMS.0207',
      ].sort(),
    );
    expect(records[0]).toMatchObject({ action: 'create-key', permission: 'kms:cmk:create', key_id: keyId, status: 200, project_id: project });
    for (const record of records) {
      expect(record).toMatchObject({ event: 'operation', principal: { kind: 'operator', id: user }, client: null, operator: { user, pid: expect.any(Number) } });
    }
    expect(records.find((record) => record.result === 'KMS.0207')).toMatchObject({ key_id: null, status: 404 });
    expect(records.find((record) => record.action === 'rotate-on-demand')).toMatchObject({ key_id: keyId, permission: 'kms:cmk:updateRotation' });

    // The same fields as the service's record of the same operation, and the operator besides.
    await new Promise((resolve) => setImmediate(resolve));
    const apiRecord = readFileSync(t.config.auditLogPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line.action === 'describe-key' && line.result === 'OK')!;
    const cliRecord = records.find((record) => record.action === 'describe-key' && record.result === 'OK')!;
    expect(Object.keys(cliRecord).sort()).toEqual([...Object.keys(apiRecord), 'operator'].sort());
    expect(verifyAuditLog(path.join(t.dataDir, 'audit-cli.log'))).toMatchObject({ ok: true });
  });

  it('tags and untags a key, as the API then shows, and records each with the API\'s name and status', async () => {
    const before = operationRecords().length;
    const tagged = await key('tag', 'cli-made', '--name', '环境', '--value', '生产');
    expect(tagged).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(tagged.stdout)).toEqual({});
    expect((await key('tag', keyId, '--name', 'team')).code).toBe(0);
    expect((await api.raw(`${keyId}/tags`, { method: 'GET' })).body).toEqual({ tags: [{ key: 'team', value: '' }, { key: '环境', value: '生产' }], existTagsNum: 2 });
    const shown = await key('tags', keyId, '--table');
    expect(shown.stdout).toMatch(/^team +-$/m);
    expect(shown.stdout).toMatch(/^环境 +生产$/m);
    const refused = await key('tag', keyId, '--name', 'a=b');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^kms: KMS\.0406 /);
    expect((await key('untag', keyId, '--name', '环境')).code).toBe(0);
    const again = await key('untag', keyId, '--name', '环境');
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^kms: KMS\.0416 /);
    expect(JSON.parse((await key('tags', keyId)).stdout)).toEqual({ tags: [{ key: 'team', value: '' }], existTagsNum: 1 });
    const noName = await key('untag', keyId);
    expect(noName.code).toBe(2);
    const records = operationRecords().slice(before);
    expect(records.map((record) => `${String(record.action)} ${String(record.status)} ${String(record.result)}`)).toEqual([
      'create-kms-tag 204 OK',
      'create-kms-tag 204 OK',
      'show-kms-tags 200 OK',
      'create-kms-tag 400 KMS.0406',
      'delete-tag 204 OK',
      'delete-tag 404 KMS.0416',
      'show-kms-tags 200 OK',
    ]);
    expect(records[0]).toMatchObject({ key_id: keyId, permission: 'kms:cmkTag:create' });
    expect(JSON.stringify(records)).not.toContain('生产');
  });

  it('takes a key by its alias (v2) too, before a key_alias of the same name', async () => {
    // Last, and in a project of its own: the tests before count the keys and records of theirs.
    const other = t.client('cli-v2-project');
    const describe = (ref: string): Promise<CliResult> => runCli(t, ['key', 'describe', '--project', 'cli-v2-project', ref]);
    const named = (await other.call('create-key', { key_alias: 'v2-named' })).body.key_info.key_id as string;
    const labelled = (await other.call('create-key', { key_alias: 'alias/cli-v2' })).body.key_info.key_id as string;
    expect((await other.call('aliases', { key_id: named, alias: 'alias/cli-v2' })).status).toBe(201);
    const described = await describe('alias/cli-v2');
    expect(described.code).toBe(0);
    expect(JSON.parse(described.stdout).key_info.key_id).toBe(named);
    expect(JSON.parse((await describe('v2-named')).stdout).key_info.key_id).toBe(named);
    expect(labelled).not.toBe(named);
  });
});

describe('npm run kms -- alias ..., beside the running service', () => {
  // A project of its own: the key tests count the keys and records of theirs.
  const project = 'cli-aliases';
  const api = t.client(project);
  const alias = (...args: string[]): Promise<CliResult> => runCli(t, ['alias', args[0]!, '--project', project, ...args.slice(1)]);
  const records = (file: string): Array<Record<string, unknown>> =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.event === 'operation');
  const cliRecords = (): Array<Record<string, unknown>> => records(path.join(t.dataDir, 'audit-cli.log'));

  it('creates, lists, moves and deletes aliases as the API then shows, each recorded with the API\'s name, status and aliases', async () => {
    const first = (await api.call('create-key', { key_alias: 'cli-alias-first' })).body.key_info.key_id as string;
    const second = (await api.call('create-key', { key_alias: 'cli-alias-second' })).body.key_info.key_id as string;
    const before = cliRecords().length;

    // KEY as the key commands take it: here create-key's key_alias.
    const created = await alias('create', 'cli-alias-first', 'alias/cli/orders');
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(created.stdout)).toEqual({
      domain_id: project,
      key_id: first,
      alias: 'alias/cli/orders',
      alias_urn: expect.stringMatching(new RegExp(`^kms:[^:]+:${project}:alias:alias/cli/orders$`)),
      create_time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      update_time: expect.any(String),
    });
    expect((await alias('create', first, 'alias/cli/billing')).code).toBe(0);
    // The running service resolves the new alias at once.
    expect((await api.call('describe-key', { key_id: 'alias/cli/orders' })).body.key_info.key_id).toBe(first);

    // KEY by an alias URN too, as the API takes it.
    const urn = (JSON.parse(created.stdout) as { alias_urn: string }).alias_urn;
    const listed = JSON.parse((await alias('list', urn)).stdout) as { aliases: Array<{ alias: string }>; page_info: unknown };
    expect(listed.aliases.map((entry) => entry.alias)).toEqual(['alias/cli/billing', 'alias/cli/orders']);
    expect(listed.page_info).toEqual({ current_count: 2 });
    const page = JSON.parse((await alias('list', '--limit', '1')).stdout) as { aliases: Array<{ alias: string }>; page_info: unknown };
    expect(page).toMatchObject({ aliases: [{ alias: 'alias/cli/billing' }], page_info: { current_count: 1, next_marker: 'alias/cli/billing' } });
    const table = await alias('list', '--table');
    expect(table.stdout.split('\n')[0]).toMatch(/^ALIAS +KEY ID +CREATED +UPDATED$/);
    expect(table.stdout).toMatch(new RegExp(`^alias/cli/orders +${first} +`, 'm'));

    const moved = await alias('associate', 'alias/cli/orders', second, '--table');
    expect(moved.code).toBe(0);
    expect(moved.stdout).toMatch(new RegExp(`^key_id +${second}$`, 'm'));
    expect((await api.call('describe-key', { key_id: 'alias/cli/orders' })).body.key_info.key_id).toBe(second);

    const deleted = await alias('delete', first, 'alias/cli/billing');
    expect(deleted).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(deleted.stdout)).toEqual({});
    expect((await api.raw(`aliases?key_id=${first}`, { method: 'GET' })).body).toEqual({ aliases: [], page_info: { current_count: 0 } });

    const made = cliRecords().slice(before);
    expect(made.map((record) => `${String(record.action)} ${String(record.status)} ${String(record.result)}`)).toEqual([
      'create-alias 201 OK',
      'create-alias 201 OK',
      'list-aliases 200 OK',
      'list-aliases 200 OK',
      'list-aliases 200 OK',
      'associate-alias 200 OK',
      'delete-alias 204 OK',
    ]);
    expect(made[0]).toMatchObject({ key_id: first, permission: 'kms:alias:create', aliases: ['alias/cli/orders'], principal: { kind: 'operator' } });
    expect(made[2]).toMatchObject({ key_id: first, permission: 'kms:alias:list' });
    expect(made[3]).toMatchObject({ key_id: null });
    expect(made[5]).toMatchObject({ key_id: second, previous_key_id: first, aliases: ['alias/cli/orders'], permission: 'kms:alias:associate' });
    expect(made[6]).toMatchObject({ key_id: first, aliases: ['alias/cli/billing'], permission: 'kms:alias:delete' });

    // The same fields as the service's record of the same operation, and the operator besides.
    expect((await api.call('alias/associate', { alias: 'alias/cli/orders', target_key_id: first })).status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    const apiRecord = records(t.config.auditLogPath).find((line) => line.action === 'associate-alias' && line.project_id === project)!;
    expect(Object.keys(made[5]!).sort()).toEqual([...Object.keys(apiRecord), 'operator'].sort());
    expect(verifyAuditLog(path.join(t.dataDir, 'audit-cli.log'))).toMatchObject({ ok: true });
  });

  it('refuses what the API refuses, with its code and record (exit code 1), and a wrong command line with exit code 2', async () => {
    const keyId = (await api.call('create-key', { key_alias: 'cli-alias-refused' })).body.key_info.key_id as string;
    const other = (await api.call('create-key', { key_alias: 'cli-alias-other' })).body.key_info.key_id as string;
    expect((await alias('create', other, 'alias/cli/taken')).code).toBe(0);
    const before = cliRecords().length;
    const [badAlias, badDelete, taken, notHeld, badLimit, unknownKey] = await Promise.all([
      alias('create', keyId, 'orders'),
      // delete-alias's body (a DELETE's) is held to openapi.yaml too, before the service sees it.
      alias('delete', keyId, 'alias/cli/taken', 'not-an-alias'),
      alias('create', keyId, 'alias/cli/taken'),
      alias('delete', keyId, 'alias/cli/taken'),
      alias('list', '--limit', '0'),
      alias('associate', 'alias/cli/taken', 'alias/cli/nothing'),
    ]);
    expect(badAlias.code).toBe(1);
    expect(badAlias.stderr).toMatch(/^kms: KMS\.1101 /);
    expect(badDelete.stderr).toMatch(/^kms: KMS\.1101 /);
    expect(taken.stderr).toMatch(/^kms: KMS\.1104 /);
    expect(notHeld.stderr).toMatch(/^kms: KMS\.0308 /);
    expect(badLimit.stderr).toMatch(/^kms: KMS\.1601 /);
    expect(unknownKey.stderr).toMatch(/^kms: KMS\.0207 /);
    for (const run of [badAlias, badDelete, taken, notHeld, badLimit, unknownKey]) expect(run).toMatchObject({ code: 1, stdout: '' });
    // The alias is still the other key's.
    expect((await api.call('describe-key', { key_id: 'alias/cli/taken' })).body.key_info.key_id).toBe(other);
    const refused = cliRecords().slice(before);
    expect(refused.map((record) => `${String(record.action)} ${String(record.status)} ${String(record.result)}`).sort()).toEqual(
      ['associate-alias 404 KMS.0207', 'create-alias 400 KMS.1101', 'create-alias 400 KMS.1104', 'delete-alias 400 KMS.0308', 'delete-alias 400 KMS.1101', 'list-aliases 400 KMS.1601'].sort(),
    );

    const [noAlias, noKey, unknownCommand] = await Promise.all([alias('create', keyId), alias('delete', keyId), runCli(t, ['alias', 'rename', '--project', project])]);
    for (const run of [noAlias, noKey, unknownCommand]) {
      expect(run).toMatchObject({ code: 2, stdout: '' });
      expect(run.stderr).not.toContain('    at ');
    }
    expect(noAlias.stderr).toMatch(/^kms: alias create needs the alias/);
    expect(noAlias.stderr).toContain(helpText(['alias', 'create']));
    expect(noKey.stderr).toMatch(/^kms: alias delete needs the aliases to delete/);
    expect(unknownCommand.stderr).toBe(`kms: unknown alias command: rename\n\n${helpText(['alias'])}`);
    expect(cliRecords().length).toBe(before + refused.length);
  });
});
