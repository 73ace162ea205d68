import path from 'node:path';
import type { AuditCheckpoint } from '../domain/repositories';
import { verifyAuditLog, type ChainHead } from './audit-log';
import { checkpointName } from './chain-checkpoints';

/** One chain's verdict, as `kms audit verify` prints it. */
export type ChainVerdict = Record<string, unknown> & {
  readonly file: string;
  readonly ok: boolean;
  readonly records: number;
  /** The checkpoint the chain was held to, when the database had one for it. */
  readonly checkpoint?: { readonly records: number; readonly at: string };
};

export interface ChainsToVerify {
  /** The chain files (a data directory's, or those collected from an instance). */
  readonly files: readonly string[];
  /** Where a missing chain would be: the directory the files were listed from. */
  readonly dir: string;
  /** Heads the operator kept (`--expect-head`), by chain file name. */
  readonly expected: ReadonlyMap<string, ChainHead>;
  /**
   * The checkpoints the service recorded in its database (chain-checkpoints.ts) and the instance
   * whose chains these are; undefined when they are not checked.
   */
  readonly checkpoints?: {
    readonly instance: string;
    readonly all: readonly AuditCheckpoint[];
    /** Only this chain's checkpoint counts (one file verified alone: the others' are not missing). */
    readonly only?: string;
  };
}

/**
 * Verifies each chain whole, then against the head the operator named for it and the checkpoint the
 * database holds for it: a chain that no longer reaches either was cut short or rewritten. A chain
 * named by either but missing from the directory fails too (it was removed).
 */
export function verifyChains(chains: ChainsToVerify): ChainVerdict[] {
  const checkpoints = new Map<string, AuditCheckpoint>();
  const prefix = chains.checkpoints ? `${chains.checkpoints.instance}/` : undefined;
  for (const checkpoint of chains.checkpoints?.all ?? []) {
    if (prefix === undefined || !checkpoint.instance.startsWith(prefix)) continue;
    const name = checkpoint.instance.slice(prefix.length);
    if (chains.checkpoints?.only === undefined || chains.checkpoints.only === name) checkpoints.set(name, checkpoint);
  }
  const verdictOf = (file: string): ChainVerdict => {
    const name = path.basename(file);
    const checkpoint = checkpoints.get(name);
    const held = checkpoint && { records: checkpoint.records, at: new Date(checkpoint.at).toISOString() };
    const operator = verifyAuditLog(file, chains.expected.get(name));
    if (!operator.ok) return { file, ...operator };
    if (checkpoint) {
      const against = verifyAuditLog(file, { records: checkpoint.records, hash: checkpoint.head });
      if (!against.ok) return { file, ...against, reason: `${against.reason} (its checkpoint of ${held!.at})`, checkpoint: held };
    }
    return { file, ...operator, anchor: `${name}=${operator.records}:${operator.head}`, ...(held ? { checkpoint: held } : {}) };
  };
  const names = new Set(chains.files.map((file) => path.basename(file)));
  const missing = new Set([...chains.expected.keys(), ...checkpoints.keys()].filter((name) => !names.has(name)));
  return [
    ...chains.files.map(verdictOf),
    ...[...missing].sort().map((name) => ({
      file: path.join(chains.dir, name),
      ok: false,
      records: 0,
      line: 1,
      reason: checkpoints.has(name) ? `the chain file is missing, but ${checkpointName(chains.checkpoints!.instance, name)} has a checkpoint: it was removed` : 'the chain file is missing: it was removed',
    })),
  ];
}
