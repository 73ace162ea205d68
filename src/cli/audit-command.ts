import { existsSync } from 'node:fs';
import path from 'node:path';
import { auditLogFiles, parseHead, type ChainHead } from '../audit/audit-log';
import { verifyChains, type ChainVerdict } from '../audit/chain-verdicts';
import type { Config } from '../config';
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
 * `kms audit verify`: one chain (--file), or every chain of the data directory: audit.log,
 * audit-<n>.log of each cluster worker, audit-cli.log of this tool. Each verdict carries the
 * chain's head, to keep outside the data directory; `--expect-head` checks a chain against a head
 * kept so (a named chain that is missing fails too). Needs neither the HSM nor the database.
 */
export function auditCommandLine(verb: string, args: readonly string[]): (config: Config) => void {
  if (verb !== 'verify') throw new UsageError(`unknown audit command: ${verb}`, ['audit']);
  const line = parseCommandLine(args, { strings: ['file'], lists: ['expect-head'] }, ['audit', 'verify']);
  const file = line.strings.get('file');
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
  return (config) => {
    if (file !== undefined) {
      if (!existsSync(file)) throw new Error(`no audit log at ${file}`);
      const [verdict] = verifyChains({ files: [file], dir: path.dirname(file), expected });
      print(line.format, verdict, () => verdictTable([verdict!]));
      if (!verdict!.ok) process.exitCode = 1;
      return;
    }
    const files = existsSync(config.dataDir) ? auditLogFiles(config.dataDir) : [];
    if (files.length === 0 && expected.size === 0) throw new Error(`no audit log in ${config.dataDir}`);
    const verdicts = verifyChains({ files, dir: config.dataDir, expected });
    const ok = verdicts.every((verdict) => verdict.ok);
    print(line.format, { ok, records: verdicts.reduce((total, verdict) => total + verdict.records, 0), files: verdicts }, () => verdictTable(verdicts));
    if (!ok) process.exitCode = 1;
  };
}
