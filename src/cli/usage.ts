/**
 * The tool's help: one entry per command, printed by `kms help [GROUP [COMMAND]]` and by
 * `--help` / `-h` anywhere on a command line, on standard output with exit code 0. A command line
 * that is wrong (unknown command or option, missing argument) gets the message and the help of
 * what it named on standard error, with exit code 2 (UsageError).
 */

/** The command line is wrong: exit code 2, with the help of `topic` (the group and command named). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly topic: readonly string[] = [],
  ) {
    super(message);
  }
}

interface CommandHelp {
  /** The arguments after `kms GROUP COMMAND`. */
  readonly args: string;
  readonly summary: string;
}

const KEY_REF = 'KEY is a key id, one of the key\'s aliases (alias/…, or its alias_urn), or its key_alias in the project.';

export const COMMANDS: Readonly<Record<string, Readonly<Record<string, CommandHelp>>>> = {
  key: {
    create: { args: '--project ID --alias ALIAS [--description TEXT] [--spec AES_256|RSA_2048|...|HMAC_512] [--usage ENCRYPT_DECRYPT|SIGN_VERIFY|GENERATE_VERIFY_MAC|KEY_AGREEMENT] [--origin kms|external]', summary: 'Create a CMK, generated in the HSM, or with --origin external pending the import of its material (create-key).' },
    list: { args: '--project ID [--state enabled|disabled|pending-deletion|1..5] [--spec SPEC|ALL (default AES_256)] [--limit N] [--marker M]', summary: 'List the project\'s keys (list-keys).' },
    describe: { args: '--project ID KEY', summary: `Show a key (describe-key). ${KEY_REF}` },
    enable: { args: '--project ID KEY', summary: 'Enable a disabled key (enable-key).' },
    disable: { args: '--project ID KEY', summary: 'Disable a key: the API refuses to use it at once (disable-key).' },
    'schedule-deletion': { args: '--project ID KEY --days N', summary: 'Schedule the key\'s deletion in N days, 7 to 1096; unusable at once (schedule-key-deletion).' },
    'cancel-deletion': { args: '--project ID KEY', summary: 'Cancel a scheduled deletion; the key stays disabled (cancel-key-deletion).' },
    'enable-rotation': { args: '--project ID KEY', summary: 'Turn scheduled rotation on (enable-key-rotation).' },
    'disable-rotation': { args: '--project ID KEY', summary: 'Turn scheduled rotation off (disable-key-rotation).' },
    'rotation-interval': { args: '--project ID KEY --days N', summary: 'Rotate every N days, 30 to 365 (update-key-rotation-interval).' },
    'rotation-status': { args: '--project ID KEY', summary: 'Show rotation settings, versions and seal counts (get-key-rotation-status).' },
    rotate: { args: '--project ID KEY', summary: 'Make a new material version now (rotate-on-demand).' },
    tag: { args: '--project ID KEY --name TAG-KEY [--value VALUE]', summary: 'Set a tag of the key, its value empty unless given (create-kms-tag).' },
    untag: { args: '--project ID KEY --name TAG-KEY', summary: 'Delete a tag of the key (delete-tag).' },
    tags: { args: '--project ID KEY', summary: "Show the key's tags (show-kms-tags)." },
    import: {
      args: '--project ID KEY (--material FILE | --private-key FILE) [--algorithm RSAES_OAEP_SHA_256|RSAES_OAEP_SHA_1] [--expires SECONDS]',
      summary: 'Import the 32 bytes of FILE as an external AES_256 key\'s material, or a key pair\'s private key (PEM or DER): wrapped here under a wrapping key made in the HSM, unwrapped in it (get-parameters-for-import, import-key-material).',
    },
    'delete-material': { args: '--project ID KEY', summary: 'Destroy an external key\'s imported material; the key is pending import again (delete-imported-key-material).' },
  },
  alias: {
    create: { args: '--project ID KEY ALIAS', summary: 'Give the key the alias (alias/…), which then names it wherever a key is taken (create-alias).' },
    list: { args: '--project ID [KEY] [--limit N] [--marker ALIAS]', summary: "List the project's aliases, or the key's, in alias order: 1 to 100 a page (default 100), from after --marker (list-aliases)." },
    associate: { args: '--project ID ALIAS KEY', summary: 'Move the alias to another key of the project (associate-alias).' },
    delete: { args: '--project ID KEY ALIAS [ALIAS...]', summary: "Delete aliases of the key, all or none (delete-alias)." },
  },
  credential: {
    create: {
      args: '--project ID --actions PATTERN[,PATTERN...] [--token [--ttl-hours N]] [--description TEXT]',
      summary: 'Issue an AK/SK pair (or, with --token, a token); the secret is shown once.',
    },
    list: { args: '[--project ID]', summary: 'List credentials, never a secret.' },
    enable: { args: 'ID', summary: 'Enable an access key or token.' },
    disable: { args: 'ID', summary: 'Disable an access key or token: refused from the next request on.' },
    delete: { args: 'ID', summary: 'Delete an access key or token.' },
  },
  audit: {
    verify: {
      args: '[--file PATH | --dir DIR] [--instance NAME] [--expect-head [CHAIN=]RECORDS:HASH ...] [--no-checkpoints]',
      summary: "Check the audit chains of the data directory (or one file, or a directory of an instance's chains).",
    },
  },
  store: {
    copy: {
      args: '--to postgres://USER@HOST:PORT/DATABASE',
      summary: 'Copy the embedded store (keys, versions, grants, tags, credentials, rotation state, audit checkpoints) into an empty PostgreSQL database.',
    },
  },
};

const NOTES: Readonly<Record<string, string>> = {
  key: `Key commands run the service's own rules (src/kms) on its data directory and HSM, beside the
running service, which sees each change at its next request. Each is recorded in audit-cli.log as
the API records the operation, with the operating system user as the principal. The JSON output
is the API's response body.`,
  alias: `Alias commands run the service's own rules on its data directory, as the key commands do, and
are recorded in audit-cli.log as the API records them (with the aliases made, moved or deleted).
${KEY_REF} ALIAS is an alias (v2): alias/ and 1 to 249 letters, digits, ":", "/", "_" or "-".
The JSON output is the API's response body ({} for delete, which the API answers 204 without one).`,
  credential: `Actions are the API's permission names, with * as a wildcard: kms:* (everything), kms:cmk:*
(key administration), kms:dek:* (data keys), kms:cmk:get, ...; a pattern that matches no
permission is refused. Secrets (secret_key, token) are shown once, when created. Credential
changes are recorded in audit-cli.log.`,
  audit: `--expect-head takes a head that audit verify printed (or the service logged, "anchor") and kept
elsewhere: the chain must still reach it. CHAIN is the chain file's name, e.g. audit-1.log.
Each chain is also held to the checkpoint its instance recorded in the database (KMS_INSTANCE_ID,
or --instance NAME for chains collected from another instance with --dir, or for --file):
a chain cut short after its last checkpoint fails. --no-checkpoints skips the database.
Exit code 1 when a chain is broken.`,
  store: `Stop the service first: what it writes after the copy's snapshot is not copied. The target must
be empty (its schema is made if missing); the copy is one transaction, its counts checked against
the source's before it commits. The password comes from the URL or KMS_DATABASE_PASSWORD_FILE, the
server's CA from KMS_DATABASE_CA_FILE. The copy is recorded in audit-cli.log (the target's URL without
its password, and the rows copied) before it commits. Then start every instance with KMS_DATABASE_URL
set to it.`,
};

const COMMON = `Options of every command:
  --json       print JSON (the default when standard output is not a terminal)
  --table      print a table (the default on a terminal)
  -h, --help   this help
Exit codes: 0 done; 1 the KMS refused or failed (its error code on standard error);
2 the command line is wrong (unknown command or option, missing or bad argument).
The tool reads the service's environment (KMS_DATA_DIR, the PKCS#11 settings).`;

function commandLine(group: string, name: string, help: CommandHelp): string {
  return `  kms ${group} ${name} ${help.args}\n      ${help.summary}`;
}

/** `record[key]` when it is the record's own entry (not an Object.prototype member such as "constructor"). */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** The help of `topic` ([], [group] or [group, command]), or undefined when it names no command. */
export function helpText(topic: readonly string[]): string | undefined {
  const [group, name, ...rest] = topic;
  if (rest.length > 0) return undefined;
  if (group === undefined) {
    const groups = Object.entries(COMMANDS).map(([groupName, commands]) =>
      Object.entries(commands).map(([commandName, help]) => commandLine(groupName, commandName, help)).join('\n'),
    );
    return `usage: kms COMMAND [ARGS] (npm run -s kms -- COMMAND [ARGS], or npx kms after npm run build)\n\n${groups.join('\n\n')}\n\n  kms help [COMMAND]\n\n${COMMON}\n`;
  }
  const commands = own(COMMANDS, group);
  if (!commands) return undefined;
  if (name === undefined) {
    const lines = Object.entries(commands).map(([commandName, help]) => commandLine(group, commandName, help));
    return `usage:\n${lines.join('\n')}\n\n${own(NOTES, group) ?? ''}\n\n${COMMON}\n`;
  }
  const help = own(commands, name);
  if (!help) return undefined;
  return `usage:\n${commandLine(group, name, help)}\n\n${own(NOTES, group) ?? ''}\n\n${COMMON}\n`;
}

/** The help of the longest part of `topic` that names something (the whole tool at least). */
export function nearestHelp(topic: readonly string[]): string {
  for (let length = Math.min(topic.length, 2); length > 0; length--) {
    const text = helpText(topic.slice(0, length));
    if (text !== undefined) return text;
  }
  return helpText([])!;
}
