import { parseArgs } from 'node:util';
import { COMMON_OPTIONS, outputFormat, type OutputFormat } from './output';
import { UsageError } from './usage';

/** A command's parsed line: its string options, its positional arguments, and the output format. */
export interface CommandLine {
  readonly strings: ReadonlyMap<string, string>;
  /** Options given more than once, or as a list (--actions). */
  readonly lists: ReadonlyMap<string, readonly string[]>;
  readonly flags: ReadonlySet<string>;
  readonly positionals: readonly string[];
  readonly format: OutputFormat;
}

export interface OptionSpec {
  /** Options that take a value. */
  readonly strings?: readonly string[];
  /** Options that take a value and may be given more than once. */
  readonly lists?: readonly string[];
  /** Options without a value. */
  readonly flags?: readonly string[];
  /** How many positional arguments, at most. */
  readonly positionals?: number;
}

/**
 * Parses a command's arguments strictly (node:util parseArgs): an unknown option, a missing value
 * or a stray argument is a UsageError naming the command (`topic`), never a stack trace.
 */
export function parseCommandLine(args: readonly string[], spec: OptionSpec, topic: readonly string[]): CommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = { ...COMMON_OPTIONS };
  for (const name of spec.strings ?? []) options[name] = { type: 'string' };
  for (const name of spec.lists ?? []) options[name] = { type: 'string', multiple: true };
  for (const name of spec.flags ?? []) options[name] = { type: 'boolean' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (error) {
    if (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS_')) throw new UsageError(error.message, topic);
    throw error;
  }
  const strings = new Map<string, string>();
  const lists = new Map<string, readonly string[]>();
  const flags = new Set<string>();
  for (const [name, value] of Object.entries(parsed.values)) {
    if (typeof value === 'string') strings.set(name, value);
    else if (Array.isArray(value)) lists.set(name, value.filter((item): item is string => typeof item === 'string'));
    else if (value === true) flags.add(name);
  }
  if (parsed.positionals.length > (spec.positionals ?? 0)) {
    throw new UsageError(`unexpected argument: ${parsed.positionals[spec.positionals ?? 0]}`, topic);
  }
  return { strings, lists, flags, positionals: parsed.positionals, format: outputFormat({ json: flags.has('json'), table: flags.has('table') }) };
}
