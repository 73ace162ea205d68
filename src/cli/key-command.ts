import { constants, createPrivateKey, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import { wrapWithPadding } from '../hsm/roles/private-key-import';
import { readFileSync } from 'node:fs';
import { KmsError } from '../errors';
import type { Operation, OperationMethod, OperationPath } from '../http/operation';
import { keyOperations } from '../http/routes/keys';
import { rotationOperations } from '../http/routes/rotation';
import { tagOperations } from '../http/routes/tags';
import { importOperations } from '../http/routes/imports';
import { aliasOperations } from '../http/routes/aliases';
import type { RequestContext } from '../kms/context';
import { KEY_STATE, type KeyState } from '../domain/keys';
import { ALIAS, isKeyReferenceShape } from '../kms/key-reference';
import type { KeyServices } from '../kms/key-services';
import { auditedOperation } from './cli-audit';
import { parseCommandLine, type CommandLine, type OptionSpec } from './command-line';
import type { CliCore } from './core';
import { print, type Table } from './output';
import { RequestCheck } from './request-check';
import { own, UsageError } from './usage';

/**
 * `kms key ...`: the key lifecycle and rotation operations of the API, run by the service's own
 * services (src/kms) on the data directory beside the running service. Each command names the
 * API operation it performs (its path in openapi.yaml): the record in audit-cli.log carries that
 * operation's name and permission, and the request body is checked against the operation's schema
 * in openapi.yaml, as the API checks it, before the service sees it.
 */

export interface KeyCommand<Body, Response> {
  readonly path: OperationPath;
  /** The operation's method at `path` (POST by default); only a POST's body is checked against openapi.yaml. */
  readonly method?: OperationMethod;
  readonly spec: OptionSpec;
  /** The command takes a KEY argument (a key id or an alias). */
  readonly takesKey: boolean;
  /** Where KEY is among the positional arguments (0, the first, unless said). */
  readonly keyAt?: number;
  /** KEY may be left out (list-aliases: the project's, or one key's). */
  readonly keyOptional?: boolean;
  /** How many positional arguments the command takes at most: 1 with KEY, none without, unless said (the aliases'). */
  readonly positionals?: number;
  readonly makesMaterial?: boolean;
  /** The request body for the resolved key; usage errors are thrown here, before the core is opened. */
  readonly body: (line: CommandLine) => (keyId: string) => Body;
  /** `keyId`: the key resolved, '' when none was named (the tag paths take it in the path, not the body). */
  readonly call: (services: KeyServices, ctx: RequestContext, body: Body, keyId: string) => Response | Promise<Response>;
  readonly table: (response: Response) => Table;
}

/** A command line checked and ready to run once the core is open, its types closed over. */
export type Runner = (line: CommandLine, topic: readonly string[]) => (core: CliCore) => Promise<void>;

const STATE_NAMES: Readonly<Record<KeyState, string>> = {
  [KEY_STATE.pendingActivation]: 'pending-activation',
  [KEY_STATE.enabled]: 'enabled',
  [KEY_STATE.disabled]: 'disabled',
  [KEY_STATE.pendingDeletion]: 'pending-deletion',
  [KEY_STATE.pendingImport]: 'pending-import',
};

const NAME_OF_STATE = new Map<string, string>(Object.entries(STATE_NAMES));

function stateName(state: string): string {
  return NAME_OF_STATE.get(state) ?? state;
}

/** --state takes a name (enabled) or the API's number (2). */
function stateCode(text: string): string {
  const named = Object.entries(STATE_NAMES).find(([, name]) => name === text);
  return named ? named[0] : text;
}

/** The API's times are milliseconds since the epoch, as strings; a table shows them in ISO 8601. */
function when(millis: string): string {
  return /^\d+$/.test(millis) ? new Date(Number(millis)).toISOString() : millis;
}

export function keyCommand<Body, Response>(definition: KeyCommand<Body, Response>): { readonly spec: OptionSpec; readonly run: Runner } {
  const spec: OptionSpec = {
    ...definition.spec,
    strings: ['project', ...(definition.spec.strings ?? [])],
    positionals: definition.positionals ?? (definition.takesKey ? 1 : 0),
  };
  const run: Runner = (line, topic) => {
    const projectId = line.strings.get('project');
    if (projectId === undefined) throw new UsageError(`${topic.join(' ')} needs --project`, topic);
    const check = new RequestCheck();
    if (!check.isProjectId(projectId)) throw new UsageError('--project takes a project id: 1 to 64 letters, digits, "_" or "-"', topic);
    const keyRef = definition.takesKey ? line.positionals[definition.keyAt ?? 0] : undefined;
    if (definition.takesKey && !definition.keyOptional && keyRef === undefined) throw new UsageError(`${topic.join(' ')} needs the key (its id or alias)`, topic);
    const bodyFor = definition.body(line);
    return async (core) => {
      const method = definition.method ?? 'post';
      const op = operationAt(core.keys, definition.path, method);
      const outcome = await auditedOperation(core, core.chain, {
        op,
        projectId,
        makesMaterial: definition.makesMaterial ?? false,
        run: async (ctx, services) => {
          const keyId = keyRef === undefined ? '' : await resolveKey(services, projectId, keyRef);
          const body = bodyFor(keyId);
          // The body openapi.yaml declares (a POST's, delete-alias's DELETE) is checked as the API checks it.
          const refusal = method === 'post' || check.declaresBody(op) ? check.refusal(op, body) : undefined;
          if (refusal) throw refusal;
          return definition.call(services, ctx, body, keyId);
        },
      });
      if (!outcome.ok) throw outcome.error;
      print(line.format, outcome.response, () => definition.table(outcome.response));
    };
  };
  return { spec, run };
}

/**
 * The key a KEY argument names in the project: the key with that id, or else the key an alias (v2,
 * `alias/…`) names, or else the key with that key_alias. An alias URN (alias_urn) is given to the
 * service as it is, which resolves it as the API does (KeyService.visibleKey; another region's or
 * project's names no key). None is KMS.0207, as the API answers for a key id it does not know.
 */
export async function resolveKey(services: KeyServices, projectId: string, ref: string): Promise<string> {
  if (await services.store.keys.get(projectId, ref)) return ref;
  const named = ALIAS.test(ref) ? await services.store.aliases.get(projectId, ref) : undefined;
  if (named) return named.keyId;
  const byAlias = await services.store.keys.getByAlias(projectId, ref);
  if (byAlias) return byAlias.keyId;
  if (isKeyReferenceShape(ref)) return ref;
  throw new KmsError('KMS.0207', { detail: 'No key of the project has this id or alias.' });
}

/** The API's operation at `path` and `method`, as the service declares it (src/http/routes). */
function operationAt(services: KeyServices, path: OperationPath, method: OperationMethod): Operation {
  const op = [...keyOperations(services.keys), ...rotationOperations(services.rotation), ...tagOperations(services.tags), ...importOperations(services.imports), ...aliasOperations(services.aliases)].find(
    (candidate) => candidate.path === path && candidate.method === method,
  );
  if (!op) throw new Error(`no operation at ${method.toUpperCase()} ${path}`);
  return op;
}

function tagName(line: CommandLine, topic: string): string {
  const name = line.strings.get('name');
  if (name === undefined) throw new UsageError(`${topic} needs --name TAG-KEY`, ['key', topic]);
  return name;
}

function days(line: CommandLine, topic: string): string {
  const value = line.strings.get('days');
  if (value === undefined) throw new UsageError(`${topic} needs --days N`, ['key', topic]);
  return value;
}

const keyStateTable = (response: { key_info: { key_id: string; key_state: string } }): Table => ({
  fields: { key_id: response.key_info.key_id, key_state: stateName(response.key_info.key_state) },
});
const deletionTable = (response: { key_id: string; key_state: string }): Table => ({ fields: { key_id: response.key_id, key_state: stateName(response.key_state) } });
const doneTable = (action: string) => (): Table => ({ fields: { done: action } });

const COMMANDS: Readonly<Record<string, ReturnType<typeof keyCommand>>> = {
  create: keyCommand({
    path: '/v1.0/{project_id}/kms/create-key',
    spec: { strings: ['alias', 'description', 'origin', 'spec', 'usage'] },
    takesKey: false,
    makesMaterial: true,
    body: (line) => {
      const alias = line.strings.get('alias');
      if (alias === undefined) throw new UsageError('key create needs --alias', ['key', 'create']);
      const description = line.strings.get('description');
      const origin = line.strings.get('origin');
      const keySpec = line.strings.get('spec');
      const keyUsage = line.strings.get('usage');
      return () => ({
        key_alias: alias,
        ...(description === undefined ? {} : { key_description: description }),
        ...(origin === undefined ? {} : { origin }),
        ...(keySpec === undefined ? {} : { key_spec: keySpec }),
        ...(keyUsage === undefined ? {} : { key_usage: keyUsage }),
      });
    },
    call: (services, ctx, body) => services.keys.createKey(ctx, body),
    table: (response) => ({ fields: { key_id: response.key_info.key_id, project_id: response.key_info.domain_id } }),
  }),
  list: keyCommand({
    path: '/v1.0/{project_id}/kms/list-keys',
    spec: { strings: ['state', 'limit', 'marker', 'spec'] },
    takesKey: false,
    body: (line) => {
      const state = line.strings.get('state');
      const limit = line.strings.get('limit');
      const marker = line.strings.get('marker');
      const keySpec = line.strings.get('spec');
      return () => ({
        ...(state === undefined ? {} : { key_state: stateCode(state) }),
        ...(keySpec === undefined ? {} : { key_spec: keySpec }),
        ...(limit === undefined ? {} : { limit }),
        ...(marker === undefined ? {} : { marker }),
      });
    },
    call: (services, ctx, body) => services.keys.listKeys(ctx, body),
    table: (response) => ({
      columns: ['KEY ID', 'ALIAS', 'STATE', 'CREATED', 'ROTATION', 'DESCRIPTION'],
      rows: (response.key_details ?? []).map((key) => [
        key.key_id,
        key.key_alias,
        stateName(key.key_state),
        when(key.creation_date),
        key.key_rotation_enabled === 'true' ? 'on' : 'off',
        key.key_description,
      ]),
    }),
  }),
  describe: keyCommand({
    path: '/v1.0/{project_id}/kms/describe-key',
    spec: {},
    takesKey: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.keys.describeKey(ctx, body),
    table: ({ key_info: key }) => ({
      fields: {
        key_id: key.key_id,
        alias: key.key_alias,
        project_id: key.domain_id,
        state: stateName(key.key_state),
        description: key.key_description,
        created: when(key.creation_date),
        deletion_date: when(key.scheduled_deletion_date),
        key_spec: key.key_spec,
        origin: key.origin,
        rotation: key.key_rotation_enabled === 'true' ? 'on' : 'off',
      },
    }),
  }),
  enable: keyCommand({
    path: '/v1.0/{project_id}/kms/enable-key',
    spec: {},
    takesKey: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.keys.enableKey(ctx, body),
    table: keyStateTable,
  }),
  disable: keyCommand({
    path: '/v1.0/{project_id}/kms/disable-key',
    spec: {},
    takesKey: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.keys.disableKey(ctx, body),
    table: keyStateTable,
  }),
  'schedule-deletion': keyCommand({
    path: '/v1.0/{project_id}/kms/schedule-key-deletion',
    spec: { strings: ['days'] },
    takesKey: true,
    body: (line) => {
      const pendingDays = days(line, 'schedule-deletion');
      return (keyId) => ({ key_id: keyId, pending_days: pendingDays });
    },
    call: (services, ctx, body) => services.keys.scheduleKeyDeletion(ctx, body),
    table: deletionTable,
  }),
  'cancel-deletion': keyCommand({
    path: '/v1.0/{project_id}/kms/cancel-key-deletion',
    spec: {},
    takesKey: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.keys.cancelKeyDeletion(ctx, body),
    table: deletionTable,
  }),
  'enable-rotation': keyCommand({
    path: '/v1.0/{project_id}/kms/enable-key-rotation',
    spec: {},
    takesKey: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.rotation.enableKeyRotation(ctx, body),
    table: doneTable('rotation enabled'),
  }),
  'disable-rotation': keyCommand({
    path: '/v1.0/{project_id}/kms/disable-key-rotation',
    spec: {},
    takesKey: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.rotation.disableKeyRotation(ctx, body),
    table: doneTable('rotation disabled'),
  }),
  'rotation-interval': keyCommand({
    path: '/v1.0/{project_id}/kms/update-key-rotation-interval',
    spec: { strings: ['days'] },
    takesKey: true,
    body: (line) => {
      const text = days(line, 'rotation-interval');
      if (!/^\d{1,10}$/.test(text)) throw new UsageError('--days takes a whole number of days', ['key', 'rotation-interval']);
      return (keyId) => ({ key_id: keyId, rotation_interval: Number(text) });
    },
    call: (services, ctx, body) => services.rotation.updateKeyRotationInterval(ctx, body),
    table: doneTable('rotation interval updated'),
  }),
  'rotation-status': keyCommand({
    path: '/v1.0/{project_id}/kms/get-key-rotation-status',
    spec: {},
    takesKey: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.rotation.getKeyRotationStatus(ctx, body),
    table: (status) => ({
      fields: {
        rotation: status.key_rotation_enabled ? 'on' : 'off',
        interval_days: status.rotation_interval,
        last_rotation: when(status.last_rotation_time),
        rotations: status.number_of_rotations,
        versions: status.key_materials.map((material) => `v${material.version} (${material.seal_count ?? 0} seals)`),
        seal_count: status.seal_count,
        seal_budget: status.seal_budget,
      },
    }),
  }),
  tag: keyCommand({
    path: '/v1.0/{project_id}/kms/{key_id}/tags',
    spec: { strings: ['name', 'value'] },
    takesKey: true,
    body: (line) => {
      const name = tagName(line, 'tag');
      const value = line.strings.get('value') ?? '';
      return () => ({ tag: { key: name, value } });
    },
    // The API answers 204 without a body: as JSON, an empty object.
    call: async (services, ctx, body, keyId) => {
      await services.tags.createKmsTag(ctx, keyId, body);
      return {};
    },
    table: doneTable('tagged'),
  }),
  untag: keyCommand({
    path: '/v1.0/{project_id}/kms/{key_id}/tags/{key}',
    method: 'delete',
    spec: { strings: ['name'] },
    takesKey: true,
    body: (line) => {
      const name = tagName(line, 'untag');
      return () => name;
    },
    call: async (services, ctx, name, keyId) => {
      await services.tags.deleteTag(ctx, keyId, name);
      return {};
    },
    table: doneTable('untagged'),
  }),
  tags: keyCommand({
    path: '/v1.0/{project_id}/kms/{key_id}/tags',
    method: 'get',
    spec: {},
    takesKey: true,
    body: () => () => undefined,
    call: (services, ctx, _body, keyId) => services.tags.showKmsTags(ctx, keyId),
    table: (response) => ({ columns: ['TAG KEY', 'VALUE'], rows: response.tags.map((tag) => [tag.key, tag.value]) }),
  }),
  'delete-material': keyCommand({
    path: '/v1.0/{project_id}/kms/delete-imported-key-material',
    spec: {},
    takesKey: true,
    // It destroys HSM material (and runs its own transaction): audited as material changes are.
    makesMaterial: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.imports.deleteImportedKeyMaterial(ctx, body),
    table: doneTable('imported key material deleted; the key is pending import'),
  }),
  import: { spec: { strings: ['project', 'material', 'private-key', 'algorithm', 'expires'], positionals: 1 }, run: importRunner },
  rotate: keyCommand({
    path: '/v1.0/{project_id}/kms/rotate-on-demand',
    spec: {},
    takesKey: true,
    makesMaterial: true,
    body: () => (keyId) => ({ key_id: keyId }),
    call: (services, ctx, body) => services.rotation.rotateOnDemand(ctx, body),
    table: (response) => ({ fields: { key_id: response.key_id, done: 'rotated' } }),
  }),
};

/** AES-256 material: a file of exactly these bytes. */
const MATERIAL_BYTES = 32;
const OAEP_HASH: Readonly<Record<string, string>> = { RSAES_OAEP_SHA_256: 'sha256', RSAES_OAEP_SHA_1: 'sha1' };

/**
 * `kms key import KEY --material FILE`: the operator's BYOK in one step, as a client of the API
 * would do it in three: get-parameters-for-import, the material wrapped here with the wrapping
 * public key (RSA-OAEP, Node's crypto: the material is in this process, as it is in the file), then
 * import-key-material. Each of the two operations is audited as the API's. `--algorithm` defaults
 * to the first the HSM unwraps with (RSAES_OAEP_SHA_256 where it can).
 */
function importRunner(line: CommandLine, topic: readonly string[]): (core: CliCore) => Promise<void> {
  const projectId = line.strings.get('project');
  if (projectId === undefined) throw new UsageError('key import needs --project', topic);
  const check = new RequestCheck();
  if (!check.isProjectId(projectId)) throw new UsageError('--project takes a project id: 1 to 64 letters, digits, "_" or "-"', topic);
  const keyRef = line.positionals[0];
  if (keyRef === undefined) throw new UsageError('key import needs the key (its id or alias)', topic);
  const materialFile = line.strings.get('material');
  const privateKeyFile = line.strings.get('private-key');
  if ((materialFile === undefined) === (privateKeyFile === undefined)) {
    throw new UsageError('key import needs one of --material FILE (the 32 bytes of an AES_256 key\'s material) and --private-key FILE (a key pair\'s private key, PEM or DER)', topic);
  }
  const readable = (file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch {
      throw new UsageError(`key import cannot read ${file}`, topic);
    }
  };
  let material: Buffer;
  if (materialFile !== undefined) {
    material = readable(materialFile);
    if (material.length !== MATERIAL_BYTES) throw new UsageError(`--material must be a file of exactly ${MATERIAL_BYTES} bytes (AES-256 key material), not ${material.length}`, topic);
  } else {
    const file = readable(privateKeyFile!);
    try {
      material = privateKeyDer(file, topic);
    } finally {
      file.fill(0);
    }
  }
  const pair = privateKeyFile !== undefined;
  const requested = line.strings.get('algorithm');
  if (requested !== undefined && OAEP_HASH[requested] === undefined) throw new UsageError('--algorithm takes RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1', topic);
  const expires = line.strings.get('expires');
  if (expires !== undefined && !/^\d{1,12}$/.test(expires)) throw new UsageError('--expires takes the material\'s expiry in seconds since the epoch', topic);
  return async (core) => {
    const algorithm = requested ?? [...(core.hsm.keyImport?.wrappingAlgorithms ?? [])].sort().reverse()[0] ?? 'RSAES_OAEP_SHA_256';
    const run = async <Body, R>(path: OperationPath, body: (keyId: string) => Body, call: (services: KeyServices, ctx: RequestContext, body: Body) => Promise<R>): Promise<R> => {
      const op = operationAt(core.keys, path, 'post');
      const outcome = await auditedOperation(core, core.chain, {
        op,
        projectId,
        makesMaterial: true,
        run: async (ctx, services) => {
          const request = body(await resolveKey(services, projectId, keyRef));
          const refusal = check.refusal(op, request);
          if (refusal) throw refusal;
          return call(services, ctx, request);
        },
      });
      if (!outcome.ok) throw outcome.error;
      return outcome.response;
    };
    const parameters = await run(
      '/v1.0/{project_id}/kms/get-parameters-for-import',
      (keyId) => ({ key_id: keyId, wrapping_algorithm: algorithm }),
      (services, ctx, request) => services.imports.getParametersForImport(ctx, request),
    );
    const publicKey = createPublicKey({ key: Buffer.from(parameters.public_key, 'base64'), format: 'der', type: 'spki' });
    // A key pair's private key goes under a temporary AES-256 key (RFC 5649), which goes under the wrapping key.
    const temporary = pair ? randomBytes(32) : undefined;
    const wrapped = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm] }, temporary ?? material).toString('base64');
    const wrappedPrivateKey = temporary ? wrapWithPadding(temporary, material).toString('base64') : undefined;
    material.fill(0);
    temporary?.fill(0);
    await run(
      '/v1.0/{project_id}/kms/import-key-material',
      (keyId) => ({
        key_id: keyId,
        import_token: parameters.import_token,
        encrypted_key_material: wrapped,
        ...(wrappedPrivateKey === undefined ? {} : { encrypted_privatekey: wrappedPrivateKey }),
        ...(expires === undefined ? {} : { expiration_time: Number(expires) }),
      }),
      (services, ctx, request) => services.imports.importKeyMaterial(ctx, request),
    );
    const done = { key_id: parameters.key_id, wrapping_algorithm: algorithm, done: 'key material imported; the key is enabled' };
    print(line.format, done, () => ({ fields: done }));
  };
}

/** The key command `verb`'s parse of `args`, and how to run it once the core is open. */
export function keyCommandLine(verb: string, args: readonly string[]): (core: CliCore) => Promise<void> {
  const command = own(COMMANDS, verb);
  const topic = ['key', verb];
  if (!command) throw new UsageError(`unknown key command: ${verb}`, ['key']);
  return command.run(parseCommandLine(args, command.spec, topic), topic);
}

/** A private key file (PEM, or DER PKCS#8 or the key type's own DER) as DER PKCS#8, what import-key-material takes. */
function privateKeyDer(file: Buffer, topic: readonly string[]): Buffer {
  const pem = file.subarray(0, 64).toString('latin1').includes('-----BEGIN');
  const attempts: Array<Parameters<typeof createPrivateKey>[0]> = pem
    ? [{ key: file, format: 'pem' }]
    : [
        { key: file, format: 'der', type: 'pkcs8' },
        { key: file, format: 'der', type: 'pkcs1' },
        { key: file, format: 'der', type: 'sec1' },
      ];
  for (const attempt of attempts) {
    try {
      return createPrivateKey(attempt).export({ type: 'pkcs8', format: 'der' });
    } catch {
      // The next form.
    }
  }
  throw new UsageError('--private-key must be a private key file: PEM, or DER (PKCS#8, PKCS#1 or SEC 1), unencrypted', topic);
}
