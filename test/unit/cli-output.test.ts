/** The command-line tool's output: JSON for scripts and pipes, a table on a terminal. */
import { outputFormat, renderTable } from '../../src/cli/output';
import { UsageError } from '../../src/cli/usage';

describe('the output format', () => {
  it('is a table on a terminal and JSON otherwise, unless --json or --table says', () => {
    expect(outputFormat({}, true)).toBe('table');
    expect(outputFormat({}, false)).toBe('json');
    expect(outputFormat({ json: true }, true)).toBe('json');
    expect(outputFormat({ table: true }, false)).toBe('table');
    expect(() => outputFormat({ json: true, table: true }, false)).toThrow(UsageError);
  });

  it('aligns columns, shows lists joined and nothing as "-"', () => {
    const rows = renderTable({ columns: ['ID', 'ACTIONS', 'EXPIRES'], rows: [['tok-1', ['kms:cmk:get', 'kms:cmk:list'], null], ['AK', ['kms:*'], '2026-12-02']] });
    expect(rows).toBe('ID     ACTIONS                   EXPIRES\ntok-1  kms:cmk:get,kms:cmk:list  -\nAK     kms:*                     2026-12-02\n');
    expect(renderTable({ columns: ['ID'], rows: [] })).toBe('(none)\n');
    expect(renderTable({ fields: { key_id: 'k', description: '' } })).toBe('key_id       k\ndescription  -\n');
  });
});
