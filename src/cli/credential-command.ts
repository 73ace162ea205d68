import type { CredentialChangeRecord } from '../audit/audit-records';
import type { CredentialInfo } from '../identity/credentials';
import { auditedCredentialChange } from './cli-audit';
import { parseCommandLine, type CommandLine, type OptionSpec } from './command-line';
import type { CliCore } from './core';
import { print, type Table } from './output';
import { own, UsageError } from './usage';

/** `kms credential ...`: AK/SK pairs and tokens, each change recorded in audit-cli.log. */

type ChangeDescription = Omit<CredentialChangeRecord, 'time' | 'event' | 'operator'>;

const SPECS: Readonly<Record<string, OptionSpec>> = {
  create: { strings: ['project', 'ttl-hours', 'description'], lists: ['actions'], flags: ['token'] },
  list: { strings: ['project'] },
  enable: { positionals: 1 },
  disable: { positionals: 1 },
  delete: { positionals: 1 },
};

function described(info: CredentialInfo): CredentialChangeRecord['credential'] {
  return { id: info.id, kind: info.kind, project_id: info.project_id, actions: info.actions, expires_at: info.expires_at };
}

function listTable(credentials: readonly CredentialInfo[]): Table {
  return {
    columns: ['ID', 'KIND', 'PROJECT', 'ACTIONS', 'ENABLED', 'EXPIRES', 'DESCRIPTION'],
    rows: credentials.map((info) => [info.id, info.kind, info.project_id, info.actions, info.enabled ? 'yes' : 'no', info.expires_at, info.description]),
  };
}

function create(line: CommandLine): (core: CliCore) => Promise<void> {
  const topic = ['credential', 'create'];
  const projectId = line.strings.get('project');
  if (projectId === undefined) throw new UsageError('credential create needs --project', topic);
  const actions = (line.lists.get('actions') ?? []).flatMap((value) => value.split(',')).map((action) => action.trim()).filter(Boolean);
  if (actions.length === 0) throw new UsageError("credential create needs --actions, e.g. --actions 'kms:*'", topic);
  const options = { projectId, actions, description: line.strings.get('description') ?? '' };
  const created = (id: string, kind: string, expiresAt: string | null): ChangeDescription => ({
    action: 'create',
    credential: { id, kind, project_id: projectId, actions, expires_at: expiresAt },
    result: 'OK',
  });
  const ttl = line.strings.get('ttl-hours');
  if (!line.flags.has('token')) {
    if (ttl !== undefined) throw new UsageError('--ttl-hours is for tokens (--token)', topic);
    return async (core) => {
      const issued = await auditedCredentialChange(core, core.chain, (credentials) => credentials.createAccessKey(options), (key) => created(key.access_key, 'aksk', null));
      // The secret key is shown here once, in the table as in the JSON: it is never shown again.
      print(line.format, issued, () => ({ fields: { ...issued } }));
    };
  }
  if (ttl !== undefined && !/^\d+$/.test(ttl)) throw new UsageError('--ttl-hours takes a whole number of hours', topic);
  const ttlOption = ttl === undefined ? {} : { ttlMs: Number(ttl) * 3_600_000 };
  return async (core) => {
    const token = await auditedCredentialChange(core, core.chain, (credentials) => credentials.createToken({ ...options, ...ttlOption }), (made) => created(made.token_id, 'token', made.expires_at));
    print(line.format, token, () => ({ fields: { ...token } }));
  };
}

function change(verb: 'enable' | 'disable' | 'delete', line: CommandLine): (core: CliCore) => Promise<void> {
  const [id] = line.positionals;
  if (id === undefined) throw new UsageError(`credential ${verb} needs the access key or token id`, ['credential', verb]);
  return async (core) => {
    const before = (await core.credentials.list()).find((info) => info.id === id);
    const done = await auditedCredentialChange(
      core,
      core.chain,
      (credentials) => (verb === 'delete' ? credentials.remove(id) : credentials.setEnabled(id, verb === 'enable')),
      (changed): ChangeDescription => ({ action: verb, credential: before ? described(before) : { id }, result: changed ? 'OK' : 'NOT_FOUND' }),
    );
    if (!done) throw new Error(`no credential ${id}`);
    const result = { id, [verb === 'delete' ? 'deleted' : 'enabled']: verb !== 'disable' };
    print(line.format, result, () => ({ fields: result }));
  };
}

/** The credential command `verb`'s parse of `args`, and how to run it once the core is open. */
export function credentialCommandLine(verb: string, args: readonly string[]): (core: CliCore) => Promise<void> {
  const spec = own(SPECS, verb);
  if (!spec) throw new UsageError(`unknown credential command: ${verb}`, ['credential']);
  const line = parseCommandLine(args, spec, ['credential', verb]);
  switch (verb) {
    case 'create':
      return create(line);
    case 'list': {
      const projectId = line.strings.get('project');
      return async ({ credentials }) => {
        const listed = await credentials.list(projectId);
        print(line.format, listed, () => listTable(listed));
      };
    }
    case 'enable':
    case 'disable':
    case 'delete':
      return change(verb, line);
    default:
      throw new UsageError(`unknown credential command: ${verb}`, ['credential']);
  }
}
