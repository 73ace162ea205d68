import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { auditLogFiles, verifyAuditLog } from './audit/audit-log';
import { loadConfig, type Config } from './config';
import { openHsm } from './hsm/open-hsm';
import { ensureSystemKeys } from './hsm/system-keys';
import { CredentialService } from './identity/credentials';
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
 *   kms audit verify [--file PATH]   (every chain of the data directory, or one file)
 */

const USAGE = `usage:
  npm run kms -- credential create --project ID --actions PATTERN[,PATTERN...] [--token [--ttl-hours N]] [--description TEXT]
  npm run kms -- credential list [--project ID]
  npm run kms -- credential disable|enable|delete ID
  npm run kms -- audit verify [--file PATH]

Actions are the API's permission names, with * as a wildcard: kms:* (everything), kms:cmk:* (key
administration), kms:dek:* (data keys), kms:cmk:get, ... Output is JSON on standard output; secrets
(secret_key, token) are shown once, when created.`;

class UsageError extends Error {}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function withCredentials<T>(config: Config, work: (credentials: CredentialService) => Promise<T> | T): Promise<T> {
  const logger = pino({ level: 'warn', base: { service: 'kms-cli' } }, pino.destination(2));
  const db = openDatabase(config.databasePath);
  try {
    // One session is plenty; the service may hold the others. Sealing secret keys needs the HSM.
    const hsm = await openHsm(config, logger, 1);
    try {
      await ensureSystemKeys(hsm);
      return await work(new CredentialService(new CredentialStore(db, new ChangeWatch(db)), hsm, systemClock));
    } finally {
      await hsm.close();
    }
  } finally {
    db.close();
  }
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
      if (values.token) {
        const ttl = values['ttl-hours'];
        if (ttl !== undefined && !/^\d+$/.test(ttl)) throw new UsageError('--ttl-hours takes a whole number of hours');
        const ttlOption = ttl === undefined ? {} : { ttlMs: Number(ttl) * 3_600_000 };
        print(await withCredentials(config, (credentials) => credentials.createToken({ ...options, ...ttlOption })));
      } else {
        print(await withCredentials(config, (credentials) => credentials.createAccessKey(options)));
      }
      return;
    }
    case 'list':
      print(await withCredentials(config, (credentials) => credentials.list(values.project)));
      return;
    case 'disable':
    case 'enable':
    case 'delete': {
      const [id] = positionals;
      if (!id) throw new UsageError(`credential ${verb} needs the access key or token id`);
      const done = await withCredentials(config, (credentials) =>
        verb === 'delete' ? credentials.remove(id) : credentials.setEnabled(id, verb === 'enable'),
      );
      if (!done) throw new Error(`no credential ${id}`);
      print({ id, [verb === 'delete' ? 'deleted' : 'enabled']: verb !== 'disable' });
      return;
    }
    default:
      throw new UsageError(`unknown credential command: ${verb ?? '(none)'}`);
  }
}

/**
 * Verifies one chain (--file), or every chain of the data directory: audit.log, and audit-<n>.log
 * of each cluster worker.
 */
function auditCommand(config: Config, args: string[]): void {
  const [verb, ...rest] = args;
  if (verb !== 'verify') throw new UsageError(`unknown audit command: ${verb ?? '(none)'}`);
  const { values } = parseArgs({ args: rest, options: { file: { type: 'string' } } });
  if (values.file !== undefined) {
    if (!existsSync(values.file)) throw new Error(`no audit log at ${values.file}`);
    const verdict = verifyAuditLog(values.file);
    print({ file: values.file, ...verdict });
    if (!verdict.ok) process.exitCode = 1;
    return;
  }
  const files = existsSync(config.dataDir) ? auditLogFiles(config.dataDir) : [];
  if (files.length === 0) throw new Error(`no audit log in ${config.dataDir}`);
  const verdicts = files.map((file) => ({ file, ...verifyAuditLog(file) }));
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
