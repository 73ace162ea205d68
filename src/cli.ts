import { existsSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type Database from 'better-sqlite3';
import pino from 'pino';
import { AuditLog, auditLogFiles, cliAuditLogFile, parseHead, verifyAuditLog, type ChainHead } from './audit/audit-log';
import type { CredentialChangeRecord } from './audit/audit-records';
import { loadConfig, type Config } from './config';
import { openHsm } from './hsm/open-hsm';
import { ensureSystemKeys } from './hsm/system-keys';
import { CredentialService, type CredentialInfo } from './identity/credentials';
import { systemClock } from './kms/context';
import { ChangeWatch } from './store/change-watch';
import { CredentialStore } from './store/credential-store';
import { openDatabase } from './store/database';

/**
 * The operator's command line. It reads the same environment as the service (KMS_DATA_DIR, the
 * PKCS#11 settings) and works while the service runs on the same data directory.
 *
 *   kms credential create --project ID --actions 'kms:*' [--token [--ttl-hours N]] [--description TEXT]
 *   kms credential list [--project ID]
 *   kms credential disable|enable|delete ID
 *   kms audit verify [--file PATH] [--expect-head [CHAIN=]RECORDS:HASH ...]
 *
 * Every credential change is recorded in the tool's own audit chain, audit-cli.log.
 */

const USAGE = `usage:
  npm run kms -- credential create --project ID --actions PATTERN[,PATTERN...] [--token [--ttl-hours N]] [--description TEXT]
  npm run kms -- credential list [--project ID]
  npm run kms -- credential disable|enable|delete ID
  npm run kms -- audit verify [--file PATH] [--expect-head [CHAIN=]RECORDS:HASH ...]

Actions are the API's permission names, with * as a wildcard: kms:* (everything), kms:cmk:* (key
administration), kms:dek:* (data keys), kms:cmk:get, ... Output is JSON on standard output; secrets
(secret_key, token) are shown once, when created. Credential changes are recorded in audit-cli.log.
--expect-head takes a head that audit verify printed (or the service logged, "anchor") and kept
elsewhere: the chain must still reach it. CHAIN is the chain file's name, e.g. audit-1.log.`;

class UsageError extends Error {}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

interface CredentialTools {
  readonly credentials: CredentialService;
  /** Runs a credential change and records it in audit-cli.log, as one step (see {@link audited}). */
  audited<T>(change: () => Promise<T> | T, describe: (result: T) => Omit<CredentialChangeRecord, 'time' | 'event' | 'operator'>): Promise<T>;
}

async function withCredentials<T>(config: Config, work: (tools: CredentialTools) => Promise<T> | T): Promise<T> {
  const logger = pino({ level: 'warn', base: { service: 'kms-cli' } }, pino.destination(2));
  const db = openDatabase(config.databasePath);
  try {
    // One session is plenty; the service may hold the others. Sealing secret keys needs the HSM.
    const hsm = await openHsm(config, logger, 1);
    try {
      await ensureSystemKeys(hsm);
      const credentials = new CredentialService(new CredentialStore(db, new ChangeWatch(db)), hsm, systemClock);
      return await work({ credentials, audited: (change, describe) => audited(db, cliAuditLogFile(config.dataDir), change, describe) });
    } finally {
      await hsm.close();
    }
  } finally {
    db.close();
  }
}

/** Who runs the command, for the record: the operating system's user (its uid when it has no name). */
function operator(): CredentialChangeRecord['operator'] {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = `uid ${process.getuid?.() ?? 'unknown'}`;
  }
  return { user, pid: process.pid };
}

/**
 * Makes a credential change and appends its record to audit-cli.log in one step, under the
 * database's write lock (BEGIN IMMEDIATE): the lock orders concurrent runs of the tool, so no two
 * extend the chain from the same line, and the operating system releases it if the tool dies. The
 * record is written and synced before the change commits; if it cannot be, the change is rolled
 * back, so no change goes unrecorded.
 */
async function audited<T>(
  db: Database.Database,
  file: string,
  change: () => Promise<T> | T,
  describe: (result: T) => Omit<CredentialChangeRecord, 'time' | 'event' | 'operator'>,
): Promise<T> {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = await change();
    const chain = new AuditLog(file);
    try {
      chain.append({ time: new Date().toISOString(), event: 'credential-change', ...describe(result), operator: operator() });
    } finally {
      chain.close();
    }
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

function described(info: CredentialInfo): CredentialChangeRecord['credential'] {
  return { id: info.id, kind: info.kind, project_id: info.project_id, actions: info.actions, expires_at: info.expires_at };
}

async function credentialCommand(config: Config, args: string[]): Promise<void> {
  const [verb, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      project: { type: 'string' },
      actions: { type: 'string', multiple: true },
      token: { type: 'boolean', default: false },
      'ttl-hours': { type: 'string' },
      description: { type: 'string' },
    },
  });
  switch (verb) {
    case 'create': {
      if (!values.project) throw new UsageError('credential create needs --project');
      const actions = (values.actions ?? []).flatMap((value) => value.split(',')).map((action) => action.trim()).filter(Boolean);
      if (actions.length === 0) throw new UsageError("credential create needs --actions, e.g. --actions 'kms:*'");
      const options = { projectId: values.project, actions, description: values.description ?? '' };
      const created = (id: string, kind: string, expiresAt: string | null): Omit<CredentialChangeRecord, 'time' | 'event' | 'operator'> => ({
        action: 'create',
        credential: { id, kind, project_id: options.projectId, actions, expires_at: expiresAt },
        result: 'OK',
      });
      if (values.token) {
        const ttl = values['ttl-hours'];
        if (ttl !== undefined && !/^\d+$/.test(ttl)) throw new UsageError('--ttl-hours takes a whole number of hours');
        const ttlOption = ttl === undefined ? {} : { ttlMs: Number(ttl) * 3_600_000 };
        print(
          await withCredentials(config, ({ credentials, audited }) =>
            audited(() => credentials.createToken({ ...options, ...ttlOption }), (token) => created(token.token_id, 'token', token.expires_at)),
          ),
        );
      } else {
        print(
          await withCredentials(config, ({ credentials, audited }) =>
            audited(() => credentials.createAccessKey(options), (issued) => created(issued.access_key, 'aksk', null)),
          ),
        );
      }
      return;
    }
    case 'list':
      print(await withCredentials(config, ({ credentials }) => credentials.list(values.project)));
      return;
    case 'disable':
    case 'enable':
    case 'delete': {
      const [id] = positionals;
      if (!id) throw new UsageError(`credential ${verb} needs the access key or token id`);
      const done = await withCredentials(config, ({ credentials, audited }) => {
        const before = credentials.list().find((info) => info.id === id);
        return audited(
          () => (verb === 'delete' ? credentials.remove(id) : credentials.setEnabled(id, verb === 'enable')),
          (changed) => ({ action: verb, credential: before ? described(before) : { id }, result: changed ? 'OK' : 'NOT_FOUND' }),
        );
      });
      if (!done) throw new Error(`no credential ${id}`);
      print({ id, [verb === 'delete' ? 'deleted' : 'enabled']: verb !== 'disable' });
      return;
    }
    default:
      throw new UsageError(`unknown credential command: ${verb ?? '(none)'}`);
  }
}

/**
 * Verifies one chain (--file), or every chain of the data directory: audit.log, audit-<n>.log of
 * each cluster worker, audit-cli.log of this tool. Each verdict carries the chain's head, to keep
 * outside the data directory; `--expect-head` checks a chain against a head kept so (a named chain
 * that is missing fails too).
 */
function auditCommand(config: Config, args: string[]): void {
  const [verb, ...rest] = args;
  if (verb !== 'verify') throw new UsageError(`unknown audit command: ${verb ?? '(none)'}`);
  const { values } = parseArgs({ args: rest, options: { file: { type: 'string' }, 'expect-head': { type: 'string', multiple: true } } });
  const expected = new Map<string, ChainHead>();
  for (const text of values['expect-head'] ?? []) {
    const at = text.lastIndexOf('=');
    const name = at < 0 ? undefined : text.slice(0, at);
    const head = parseHead(at < 0 ? text : text.slice(at + 1));
    if (!head) throw new UsageError(`--expect-head takes [CHAIN=]RECORDS:HASH, e.g. audit.log=120:<64 hex digits>; got ${text}`);
    const chain = name ?? (values.file === undefined ? undefined : path.basename(values.file));
    if (chain === undefined) throw new UsageError('--expect-head names its chain (CHAIN=RECORDS:HASH) unless --file is given');
    // With --file, a head for another chain would never be checked: a typo must not pass as "ok".
    if (values.file !== undefined && chain !== path.basename(values.file)) {
      throw new UsageError(`--expect-head names ${chain}, but --file is ${path.basename(values.file)}`);
    }
    expected.set(chain, head);
  }
  const verdictOf = (file: string): Record<string, unknown> & { ok: boolean; records: number } => {
    const head = expected.get(path.basename(file));
    const verdict = verifyAuditLog(file, head);
    return verdict.ok ? { file, ...verdict, anchor: `${path.basename(file)}=${verdict.records}:${verdict.head}` } : { file, ...verdict };
  };
  if (values.file !== undefined) {
    if (!existsSync(values.file)) throw new Error(`no audit log at ${values.file}`);
    const verdict = verdictOf(values.file);
    print(verdict);
    if (!verdict.ok) process.exitCode = 1;
    return;
  }
  const files = existsSync(config.dataDir) ? auditLogFiles(config.dataDir) : [];
  const names = new Set(files.map((file) => path.basename(file)));
  const missing = [...expected.keys()].filter((name) => !names.has(name));
  if (files.length === 0 && missing.length === 0) throw new Error(`no audit log in ${config.dataDir}`);
  const verdicts = [
    ...files.map(verdictOf),
    ...missing.map((name) => ({ file: path.join(config.dataDir, name), ok: false, records: 0, line: 1, reason: 'the chain file is missing: it was removed' })),
  ];
  const ok = verdicts.every((verdict) => verdict.ok);
  print({ ok, records: verdicts.reduce((total, verdict) => total + verdict.records, 0), files: verdicts });
  if (!ok) process.exitCode = 1;
}

async function main(argv: string[]): Promise<void> {
  const [group, ...args] = argv;
  const config = loadConfig();
  if (group === 'credential') return credentialCommand(config, args);
  if (group === 'audit') return auditCommand(config, args);
  throw new UsageError(group ? `unknown command: ${group}` : 'no command given');
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof UsageError) {
    process.stderr.write(`kms: ${error.message}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`kms: ${message}\n`);
  process.exitCode = 1;
});
