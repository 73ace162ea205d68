import { UsageError } from './usage';

/**
 * What a command prints: JSON for scripts, a table for people. The default follows standard output:
 * a terminal gets the table, a pipe or a file gets JSON (what scripts and the tests read; the tool
 * printed only JSON before it had tables); --json and --table force one.
 */
export type OutputFormat = 'json' | 'table';

/** The options every command takes, for node:util parseArgs. */
export const COMMON_OPTIONS = {
  json: { type: 'boolean' },
  table: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function outputFormat(values: { json?: boolean | undefined; table?: boolean | undefined }, terminal = process.stdout.isTTY === true): OutputFormat {
  if (values.json && values.table) throw new UsageError('--json and --table exclude each other');
  if (values.json) return 'json';
  if (values.table) return 'table';
  return terminal ? 'table' : 'json';
}

/** Rows with named columns, or one record shown as field/value lines. */
export type Table = { readonly columns: readonly string[]; readonly rows: ReadonlyArray<readonly unknown[]> } | { readonly fields: Readonly<Record<string, unknown>> };

/** Prints `json` as JSON, or `table()` (built only when asked for) as aligned text. */
export function print(format: OutputFormat, json: unknown, table: () => Table): void {
  process.stdout.write(format === 'json' ? `${JSON.stringify(json, null, 2)}\n` : renderTable(table()));
}

export function renderTable(table: Table): string {
  if ('fields' in table) {
    const entries = Object.entries(table.fields);
    const width = Math.max(0, ...entries.map(([name]) => name.length));
    return entries.map(([name, value]) => `${name.padEnd(width)}  ${cell(value)}\n`).join('');
  }
  if (table.rows.length === 0) return '(none)\n';
  const lines = [table.columns, ...table.rows.map((row) => row.map(cell))];
  const widths = table.columns.map((_, column) => Math.max(...lines.map((line) => String(line[column] ?? '').length)));
  return lines.map((line) => `${line.map((value, column) => String(value ?? '').padEnd(widths[column] ?? 0)).join('  ').trimEnd()}\n`).join('');
}

/** One cell: lists joined by commas, nothing as "-", anything else as its JSON. */
function cell(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (Array.isArray(value)) return value.map(cell).join(',');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
