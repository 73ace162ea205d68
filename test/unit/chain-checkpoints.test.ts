import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { AuditLog, verifyAuditLog } from '../../src/audit/audit-log';
import { ChainCheckpoints, checkpointName } from '../../src/audit/chain-checkpoints';
import { verifyChains } from '../../src/audit/chain-verdicts';
import type { AuditCheckpoint, AuditCheckpointRepository } from '../../src/domain/repositories';
import { operationRecord } from '../helpers/audit-record';

const record = operationRecord;

/** The repository's contract as the store suite holds every store to it: record replaces a chain's checkpoint. */
class CheckpointTable implements AuditCheckpointRepository {
  readonly rows = new Map<string, AuditCheckpoint>();
  recorded = 0;
  failing = false;
  record(checkpoint: AuditCheckpoint): Promise<void> {
    if (this.failing) return Promise.reject(new Error('the database is away'));
    this.recorded++;
    this.rows.set(checkpoint.instance, checkpoint);
    return Promise.resolve();
  }
  all(): Promise<AuditCheckpoint[]> {
    return Promise.resolve([...this.rows.values()]);
  }
}

const logger = pino({ level: 'silent' });

describe('audit chain checkpoints', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-checkpoints-'));
    file = path.join(dir, 'audit-2.log');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('names the instance on every line, and the chain still verifies', async () => {
    const log = new AuditLog(file, { instance: 'kms-a' });
    await log.append(record('one'));
    await log.append(record('two'));
    await log.close();
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.instance)).toEqual(['kms-a', 'kms-a']);
    expect(verifyAuditLog(file)).toMatchObject({ ok: true, records: 2 });
    expect(() => new AuditLog(path.join(dir, 'other.log'), { instance: 'a"b' })).toThrow('not an instance name');
  });

  it('records the head under <instance>/<chain> when it moved, not when it did not, and the last head at close', async () => {
    const log = new AuditLog(file, { instance: 'kms-a' });
    const table = new CheckpointTable();
    const checkpoints = new ChainCheckpoints(log, { repository: table, instance: 'kms-a', intervalMs: 3_600_000 }, logger);
    await log.append(record('one'));
    await checkpoints.checkpoint();
    expect(table.rows.get('kms-a/audit-2.log')).toMatchObject({ records: 1, head: log.head.hash });
    await checkpoints.checkpoint();
    expect(table.recorded).toBe(1);
    await log.append(record('two'));
    await log.close();
    await checkpoints.close();
    expect(table.recorded).toBe(2);
    const last = table.rows.get(checkpointName('kms-a', file))!;
    expect(last).toMatchObject({ records: 2 });
    expect(verifyAuditLog(file, { records: last.records, hash: last.head })).toMatchObject({ ok: true, records: 2 });
  });

  it('tries again after the database failed, and a chain cut after its last checkpoint fails verification', async () => {
    const log = new AuditLog(file, { instance: 'kms-a' });
    const table = new CheckpointTable();
    const checkpoints = new ChainCheckpoints(log, { repository: table, instance: 'kms-a', intervalMs: 3_600_000 }, logger);
    await log.append(record('one'));
    table.failing = true;
    await checkpoints.checkpoint();
    expect(table.rows.size).toBe(0);
    table.failing = false;
    await log.append(record('two'));
    await log.close();
    await checkpoints.close();
    const checkpoint = table.rows.get('kms-a/audit-2.log')!;
    expect(checkpoint.records).toBe(2);
    // Cut the last line: what is left is a whole chain, found short only by the checkpoint.
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    writeFileSync(file, `${lines[0]!}\n`);
    expect(verifyAuditLog(file)).toMatchObject({ ok: true, records: 1 });
    expect(verifyAuditLog(file, { records: checkpoint.records, hash: checkpoint.head })).toMatchObject({ ok: false, reason: expect.stringContaining('cut from its end') });
  });
});

describe('verifying chains against their checkpoints', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-verify-chains-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function chainOf(name: string, records: number): Promise<{ file: string; checkpoint: AuditCheckpoint }> {
    const file = path.join(dir, name);
    const log = new AuditLog(file, { instance: 'kms-a' });
    for (let i = 0; i < records; i++) await log.append(record(`${name}-${i}`));
    await log.close();
    return { file, checkpoint: { instance: checkpointName('kms-a', file), records, head: log.head.hash, at: Date.parse('2026-12-07T10:00:00Z') } };
  }

  it("holds each chain to its instance's checkpoint, ignores other instances', and finds a cut or a removed chain", async () => {
    const one = await chainOf('audit-1.log', 3);
    const two = await chainOf('audit-2.log', 2);
    const gone = await chainOf('audit-3.log', 1);
    rmSync(gone.file);
    const foreign: AuditCheckpoint = { ...one.checkpoint, instance: 'kms-b/audit-1.log', records: 99 };
    const all = [one.checkpoint, two.checkpoint, gone.checkpoint, foreign];
    const whole = verifyChains({ files: [one.file, two.file], dir, expected: new Map(), checkpoints: { instance: 'kms-a', all } });
    expect(whole.map((verdict) => [path.basename(verdict.file), verdict.ok])).toEqual([['audit-1.log', true], ['audit-2.log', true], ['audit-3.log', false]]);
    expect(whole[0]).toMatchObject({ checkpoint: { records: 3, at: '2026-12-07T10:00:00.000Z' } });
    expect(whole[2]).toMatchObject({ reason: expect.stringContaining('kms-a/audit-3.log has a checkpoint') });

    const lines = readFileSync(two.file, 'utf8').split('\n').filter(Boolean);
    writeFileSync(two.file, `${lines[0]!}\n`);
    const cut = verifyChains({ files: [one.file, two.file], dir, expected: new Map(), checkpoints: { instance: 'kms-a', all: [one.checkpoint, two.checkpoint] } });
    expect(cut[1]).toMatchObject({ ok: false, reason: expect.stringContaining('cut from its end') });
    // Without the checkpoints, the cut chain is whole: only they (or a kept head) show the cut.
    expect(verifyChains({ files: [two.file], dir, expected: new Map() })[0]).toMatchObject({ ok: true, records: 1 });
  });
});
