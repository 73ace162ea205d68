import { copyFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chainHash, cliAuditLogFile, verifyAuditLog } from '../../src/audit/audit-log';
import { runCli, runCliOn } from '../helpers/cli';
import { eventually } from '../helpers/eventually';
import { useTestService } from '../helpers/service';

/**
 * Anchoring the end of an audit chain: a chain whose last lines were cut is shorter but whole, so
 * only a head kept outside the data directory (logged by the service, printed by audit verify)
 * shows the cut.
 */
const t = useTestService({ env: { KMS_AUDIT_HEAD_INTERVAL_SECONDS: '1', KMS_AUDIT_CHECKPOINT_SECONDS: '1', KMS_INSTANCE_ID: 'kms-anchor' } });

beforeAll(async () => {
  for (let i = 0; i < 5; i++) await t.client('project-a').call('list-keys');
});

/** The anchors ("audit.log=RECORDS:HASH") the service logged with `message`. */
function loggedAnchors(message: string): string[] {
  return t.logs.lines
    .map((line) => JSON.parse(line) as { msg?: string; audit?: { anchor: string } })
    .filter((line) => line.msg === message && line.audit)
    .map((line) => line.audit!.anchor);
}


function anchorOf(file: string): string {
  const verdict = verifyAuditLog(file);
  if (!verdict.ok) throw new Error(`${file} is broken`);
  return `${path.basename(file)}=${verdict.records}:${verdict.head}`;
}

/** A copy of the chain whose lines were changed by `change`. */
function changedCopy(change: (lines: string[]) => string[]): string {
  const file = path.join(t.dataDir, `copy-${Math.random().toString(16).slice(2)}.log`);
  copyFileSync(t.config.auditLogPath, file);
  writeFileSync(file, `${change(readFileSync(file, 'utf8').split('\n').filter(Boolean)).join('\n')}\n`);
  return file;
}

describe('the head of the audit chain', () => {
  it('is logged when the chain opens, every interval when it moved, and when it closes', async () => {
    expect(loggedAnchors('audit chain opened')).toEqual(['audit.log=0:' + '0'.repeat(64)]);
    // Every record on disk is in a logged head within an interval or so.
    expect(await eventually('the log line of the audit chain head', () => loggedAnchors('audit chain head').includes(anchorOf(t.config.auditLogPath)))).toBe(true);
    await t.client('project-a').call('list-keys');
    expect(await eventually('the log line of the audit chain head', () => loggedAnchors('audit chain head').includes(anchorOf(t.config.auditLogPath)))).toBe(true);
    await t.restart();
    expect(loggedAnchors('audit chain closed')).toEqual([anchorOf(t.config.auditLogPath)]);
  });

  it('is what audit verify prints, and --expect-head passes the chain that still reaches it', async () => {
    const verified = await runCli(t, ['audit', 'verify']);
    expect(verified.code).toBe(0);
    const anchor = anchorOf(t.config.auditLogPath);
    // audit-cli.log too: it holds the first start's admin credential.
    expect(JSON.parse(verified.stdout).files).toEqual([
      expect.objectContaining({ file: cliAuditLogFile(t.dataDir), ok: true, records: 2 }),
      expect.objectContaining({ file: t.config.auditLogPath, ok: true, anchor }),
    ]);

    await t.client('project-a').call('list-keys'); // the chain grew past the anchor: still fine
    await new Promise((resolve) => setImmediate(resolve));
    const later = await runCli(t, ['audit', 'verify', '--expect-head', anchor]);
    expect(later.code).toBe(0);
  });

  it('--expect-head finds lines cut from the end, which verify alone cannot', async () => {
    const { records, head } = verifyAuditLog(t.config.auditLogPath) as { records: number; head: string };
    const cut = changedCopy((lines) => lines.slice(0, -2));
    expect(verifyAuditLog(cut)).toMatchObject({ ok: true, records: records - 2 });

    const result = await runCli(t, ['audit', 'verify', '--file', cut, '--expect-head', `${records}:${head}`]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, line: records - 1, reason: expect.stringContaining('cut from its end') });
  });

  it('--expect-head finds a chain rewritten from some line on with every hash recomputed', async () => {
    const { records, head } = verifyAuditLog(t.config.auditLogPath) as { records: number; head: string };
    const rewritten = changedCopy((lines) => {
      let prev = (JSON.parse(lines[1]!) as { prev: string }).prev;
      return lines.map((line, i) => {
        if (i < 1) return line;
        const { hash: _hash, ...record } = JSON.parse(line) as Record<string, unknown>;
        if (i === 1) record.result = 'KMS.0307';
        record.prev = prev;
        const body = JSON.stringify(record);
        prev = chainHash(prev, body);
        return `${body.slice(0, -1)},"hash":"${prev}"}`;
      });
    });
    expect(verifyAuditLog(rewritten)).toMatchObject({ ok: true, records });

    const result = await runCli(t, ['audit', 'verify', '--file', rewritten, '--expect-head', `${records}:${head}`]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, line: records, reason: expect.stringContaining('rewritten') });
  });

  it('--expect-head naming another chain than --file is refused, not passed unchecked', async () => {
    const result = await runCli(t, ['audit', 'verify', '--file', t.config.auditLogPath, '--expect-head', `audit-1.log=3:${'a'.repeat(64)}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--expect-head names audit-1.log, but --file is audit.log');
  });

  it('--expect-head for a chain file that is gone fails', async () => {
    const result = await runCli(t, ['audit', 'verify', '--expect-head', `audit-7.log=3:${'a'.repeat(64)}`]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({
      ok: false,
      files: expect.arrayContaining([expect.objectContaining({ file: path.join(t.dataDir, 'audit-7.log'), ok: false, reason: expect.stringContaining('missing') })]),
    });
  });
});

describe('the checkpoints of the audit chains in the database', () => {
  interface Verified {
    ok: boolean;
    files: Array<{ file: string; ok: boolean; records: number; reason?: string; checkpoint?: { records: number } }>;
  }
  const verify = async (...args: string[]): Promise<{ code: number | null; out: Verified }> => {
    // The tool run as the instance's own operator runs it: with its KMS_INSTANCE_ID.
    const result = await runCliOn({ KMS_DATA_DIR: t.dataDir, ...t.moduleEnv, KMS_INSTANCE_ID: 'kms-anchor' }, ['audit', 'verify', ...args]);
    return { code: result.code, out: JSON.parse(result.stdout) as Verified };
  };
  const checkpointed = async (): Promise<number | undefined> => (await verify()).out.files.find((file) => file.file === t.config.auditLogPath)?.checkpoint?.records;

  it('name the instance on every record, and hold the chain to its checkpoint: a cut after it fails, which the chain alone cannot show', async () => {
    await t.client('project-a').call('list-keys');
    const lines = readFileSync(t.config.auditLogPath, 'utf8').split('\n').filter(Boolean);
    const recent = lines.slice(-3).map((line) => JSON.parse(line) as { instance?: string });
    expect(recent.map((record) => record.instance)).toEqual(['kms-anchor', 'kms-anchor', 'kms-anchor']);
    // Checkpointed within an interval or so of the last record.
    expect(await eventually('the checkpoint of the chain', checkpointed, { until: (records) => records === lines.length })).toBe(lines.length);

    const whole = readFileSync(t.config.auditLogPath);
    writeFileSync(t.config.auditLogPath, `${lines.slice(0, -2).join('\n')}\n`);
    try {
      expect(verifyAuditLog(t.config.auditLogPath)).toMatchObject({ ok: true, records: lines.length - 2 });
      const cut = await verify();
      expect(cut.code).toBe(1);
      expect(cut.out.files.find((file) => file.file === t.config.auditLogPath)).toMatchObject({ ok: false, reason: expect.stringContaining('cut from its end') });
      // Without the database, the cut goes unseen: what the checkpoints are for.
      expect((await verify('--no-checkpoints')).code).toBe(0);
      // Another instance's checkpoints do not apply to this one's chains.
      expect((await verify('--instance', 'kms-other')).code).toBe(0);
      expect((await verify('--file', t.config.auditLogPath, '--instance', 'kms-anchor')).code).toBe(1);
    } finally {
      writeFileSync(t.config.auditLogPath, whole);
    }
    expect((await verify()).code).toBe(0);
  });

  it('a checkpointed chain whose file was removed fails', async () => {
    // Moved away and back: the service keeps writing the same file.
    const moved = `${t.config.auditLogPath}.moved`;
    renameSync(t.config.auditLogPath, moved);
    try {
      const result = await verify();
      expect(result.code).toBe(1);
      expect(result.out.files.find((file) => file.file === t.config.auditLogPath)).toMatchObject({ ok: false, reason: expect.stringContaining('kms-anchor/audit.log has a checkpoint') });
    } finally {
      renameSync(moved, t.config.auditLogPath);
    }
  });
});
