import { MAX_ALIASES_PER_KEY } from '../kms/key-reference';
import type { AliasEntity } from '../kms/api-types';
import { parseCommandLine, type CommandLine, type OptionSpec } from './command-line';
import type { CliCore } from './core';
import { keyCommand, type Runner } from './key-command';
import type { Table } from './output';
import { own, UsageError } from './usage';

/**
 * `kms alias ...`: the aliases (v2) operations of the API (create-alias, list-aliases,
 * associate-alias, delete-alias), run as `kms key ...` runs the key operations (keyCommand): by the
 * service's own services, the body checked against openapi.yaml, and recorded in audit-cli.log
 * with the API's record (the aliases, and associate-alias's previous_key_id, included). KEY is
 * resolved as the key commands resolve it; an ALIAS argument is the alias itself (`alias/…`),
 * held to openapi.yaml's pattern as the API holds it (KMS.1101).
 */

/** The ALIAS argument at `index`, or a usage error naming the command. */
function aliasAt(line: CommandLine, index: number, verb: string): string {
  const alias = line.positionals[index];
  if (alias === undefined) throw new UsageError(`alias ${verb} needs the alias (alias/…)`, ['alias', verb]);
  return alias;
}

/** An alias as a table shows it: the API's fields, its times as they are. */
const entityTable = (entity: AliasEntity): Table => ({
  fields: { alias: entity.alias, key_id: entity.key_id, alias_urn: entity.alias_urn, created: entity.create_time, updated: entity.update_time },
});

const COMMANDS: Readonly<Record<string, { readonly spec: OptionSpec; readonly run: Runner }>> = {
  create: keyCommand({
    path: '/v1.0/{project_id}/kms/aliases',
    spec: {},
    takesKey: true,
    positionals: 2,
    body: (line) => {
      const alias = aliasAt(line, 1, 'create');
      return (keyId) => ({ key_id: keyId, alias });
    },
    call: (services, ctx, body) => services.aliases.createAlias(ctx, body),
    table: entityTable,
  }),
  list: keyCommand({
    path: '/v1.0/{project_id}/kms/aliases',
    method: 'get',
    spec: { strings: ['limit', 'marker'] },
    takesKey: true,
    keyOptional: true,
    body: (line) => {
      const limit = line.strings.get('limit');
      const marker = line.strings.get('marker');
      return (keyId) => ({
        ...(keyId === '' ? {} : { key_id: keyId }),
        ...(limit === undefined ? {} : { limit }),
        ...(marker === undefined ? {} : { marker }),
      });
    },
    call: (services, ctx, query) => services.aliases.listAliases(ctx, query),
    table: (response) => ({
      columns: ['ALIAS', 'KEY ID', 'CREATED', 'UPDATED'],
      rows: response.aliases.map((entity) => [entity.alias, entity.key_id, entity.create_time, entity.update_time]),
    }),
  }),
  associate: keyCommand({
    path: '/v1.0/{project_id}/kms/alias/associate',
    spec: {},
    takesKey: true,
    // `associate ALIAS KEY`: the alias, then the key it is to name (the API's order, alias and target_key_id).
    keyAt: 1,
    positionals: 2,
    body: (line) => {
      const alias = aliasAt(line, 0, 'associate');
      return (keyId) => ({ alias, target_key_id: keyId });
    },
    call: (services, ctx, body) => services.aliases.associateAlias(ctx, body),
    table: entityTable,
  }),
  delete: keyCommand({
    path: '/v1.0/{project_id}/kms/aliases',
    method: 'delete',
    spec: {},
    takesKey: true,
    // KEY, then the aliases to delete: as many as a key may hold.
    positionals: 1 + MAX_ALIASES_PER_KEY,
    body: (line) => {
      const aliases = line.positionals.slice(1);
      if (aliases.length === 0) throw new UsageError('alias delete needs the aliases to delete (alias/…)', ['alias', 'delete']);
      return (keyId) => ({ key_id: keyId, aliases });
    },
    // The API answers 204 without a body: as JSON, an empty object.
    call: async (services, ctx, body) => {
      await services.aliases.deleteAlias(ctx, body);
      return {};
    },
    table: () => ({ fields: { done: 'aliases deleted' } }),
  }),
};

/** The alias command `verb`'s parse of `args`, and how to run it once the core is open. */
export function aliasCommandLine(verb: string, args: readonly string[]): (core: CliCore) => Promise<void> {
  const command = own(COMMANDS, verb);
  const topic = ['alias', verb];
  if (!command) throw new UsageError(`unknown alias command: ${verb}`, ['alias']);
  return command.run(parseCommandLine(args, command.spec, topic), topic);
}
