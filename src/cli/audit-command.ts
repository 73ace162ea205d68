import { existsSync } from 'node:fs';
import path from 'node:path';
import { auditLogFiles, isInstanceName, parseHead, type ChainHead } from '../audit/audit-log';
import { verifyChains, type ChainVerdict } from '../audit/chain-verdicts';
import type { Config } from '../config';
import type { AuditCheckpoint, MetadataStore } from '../domain/repositories';
import { openStore } from '../store/open-store';
import { parseCommandLine } from './command-line';
import { print, type Table } from './output';
import { UsageError } from './usage';

function verdictTable(verdicts: readonly ChainVerdict[]): Table {
  return {
    columns: ['FILE', 'OK', 'RECORDS', 'ANCHOR OR REASON'],
    rows: verdicts.map((verdict) => [verdict.file, verdict.ok ? 'yes' : 'NO', verdict.records, verdict.ok ? verdict.anchor : `line ${String(verdict.line)}: ${String(verdict.reason)}`]),
  };
}

/**
 * The checkpoints the service recorded in its database (chain-checkpoints.ts), read through the
 * store without the HSM (PostgreSQL's when KMS_DATABASE_URL is set). A data directory whose embedded
 * database does not exist (it never served) has none; a database that cannot be read fails the command, unless --no-checkpoints.
 */
async function readCheckpoints(config: Config): Promise<AuditCheckpoint[]> {
  if (config.database.kind === 'sqlite' && !existsSync(config.databasePath)) return [];
  let store: MetadataStore;
  try {
    store = await openStore(config);
  } catch (error) {
    throw new Error(`the audit checkpoints cannot be read from the database (${error instanceof Error ? error.message : String(error)}); --no-checkpoints verifies without them`, { cause: error });
  }
  try {
    return await store.auditCheckpoints.all();
  } finally {
    await store.close();
  }
}

/**
 * `kms audit verify`: one chain (--file), or every chain of the data directory (or of --dir, chains
 * collected from an instance): audit.log, audit-<n>.log of each cluster worker, audit-cli.log of
 * this tool. Each verdict carries the chain's head, to keep outside the data directory;
 * `--expect-head` checks a chain against a head kept so, and each chain is checked against the
 * checkpoint its instance (KMS_INSTANCE_ID, or --instance) recorded in the database, so a chain
 * cut short after it fails; a named or checkpointed chain that is missing fails too. Needs no HSM.
 */
export function auditCommandLine(verb: string, args: readonly string[]): (config: Config) => Promise<void> {
  if (verb !== 'verify') throw new UsageError(`unknown audit command: ${verb}`, ['audit']);
  const line = parseCommandLine(args, { strings: ['file', 'dir', 'instance'], lists: ['expect-head'], flags: ['no-checkpoints'] }, ['audit', 'verify']);
  const file = line.strings.get('file');
  const dirOption = line.strings.get('dir');
  const instanceOption = line.strings.get('instance');
  const useCheckpoints = !line.flags.has('no-checkpoints');
  if (file !== undefined && dirOption !== undefined) throw new UsageError('--file and --dir exclude each other', ['audit', 'verify']);
  if (instanceOption !== undefined && !isInstanceName(instanceOption)) throw new UsageError(`--instance takes an instance name (KMS_INSTANCE_ID); got ${instanceOption}`, ['audit', 'verify']);
  if (instanceOption !== undefined && !useCheckpoints) throw new UsageError('--instance names whose checkpoints to check: not with --no-checkpoints', ['audit', 'verify']);
  const expected = new Map<string, ChainHead>();
  for (const text of line.lists.get('expect-head') ?? []) {
    const at = text.lastIndexOf('=');
    const name = at < 0 ? undefined : text.slice(0, at);
    const head = parseHead(at < 0 ? text : text.slice(at + 1));
    if (!head) throw new UsageError(`--expect-head takes [CHAIN=]RECORDS:HASH, e.g. audit.log=120:<64 hex digits>; got ${text}`, ['audit', 'verify']);
    const chain = name ?? (file === undefined ? undefined : path.basename(file));
    if (chain === undefined) throw new UsageError('--expect-head names its chain (CHAIN=RECORDS:HASH) unless --file is given', ['audit', 'verify']);
    // With --file, a head for another chain would never be checked: a typo must not pass as "ok".
    if (file !== undefined && chain !== path.basename(file)) throw new UsageError(`--expect-head names ${chain}, but --file is ${path.basename(file)}`, ['audit', 'verify']);
    expected.set(chain, head);
  }
  return async (config) => {
    // One file is held to a checkpoint only when --instance says whose chain it is: a copy of
    // another instance's chain of the same name must not be held to this one's.
    const instance = instanceOption ?? (file === undefined ? config.instanceId : undefined);
    const checkpoints = useCheckpoints && instance !== undefined ? { instance, all: await readCheckpoints(config) } : undefined;
    if (file !== undefined) {
      if (!existsSync(file)) throw new Error(`no audit log at ${file}`);
      const [verdict] = verifyChains({ files: [file], dir: path.dirname(file), expected, checkpoints: checkpoints && { ...checkpoints, only: path.basename(file) } });
      print(line.format, verdict, () => verdictTable([verdict!]));
      if (!verdict!.ok) process.exitCode = 1;
      return;
    }
    const dir = dirOption === undefined ? config.dataDir : path.resolve(dirOption);
    const files = existsSync(dir) ? auditLogFiles(dir) : [];
    if (files.length === 0 && expected.size === 0) throw new Error(`no audit log in ${dir}`);
    const verdicts = verifyChains({ files, dir, expected, checkpoints });
    const ok = verdicts.every((verdict) => verdict.ok);
    print(line.format, { ok, records: verdicts.reduce((total, verdict) => total + verdict.records, 0), files: verdicts }, () => verdictTable(verdicts));
    if (!ok) process.exitCode = 1;
  };
}
