/**
 * Each test file runs in a process of its own (jest.config.js, workerIdleMemoryLimit): PKCS#11
 * initialisation is per process, so a file must never inherit a module that an earlier file left
 * initialised. Shown with Jest itself, on the project's configuration with one worker, over three
 * fixture files that each find SoftHSM uninitialised and leave it initialised
 * (test/fixtures/isolation). Were the files to share a process, the second would fail, whatever
 * order Jest picks. And each file's SoftHSM tokens leave the run's shared token directory when
 * their service stops, not at the end of the run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runJest } from '../helpers/run-jest';
import { startTestService } from '../helpers/service';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'isolation');

describe('test file isolation', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-isolation-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives every test file a fresh process, with no PKCS#11 module left initialised by another file', async () => {
    const log = path.join(dir, 'processes');
    const { code, output } = await runJest(path.join(FIXTURES, 'jest.config.js'), { KMS_ISOLATION_LOG: log });
    expect({ code, output }).toEqual({ code: 0, output: expect.stringContaining('Tests:       3 passed, 3 total') });
    const runs = readFileSync(log, 'utf8').trim().split('\n').map((line) => line.split(' '));
    expect(runs.map(([name]) => name).sort()).toEqual(['first', 'second', 'third']);
    const pids = new Set(runs.map(([, pid]) => pid));
    expect(pids.size).toBe(3);
    expect(pids.has(String(process.pid))).toBe(false);
  }, 120_000);

  it('removes the SoftHSM token of a test service from the token directory of the run when it stops', async () => {
    const labels = (): string[] => [...spawnSync('softhsm2-util', ['--show-slots'], { encoding: 'utf8' }).stdout.matchAll(/Label:\s+(\S+)/g)].map((match) => match[1]!);
    const t = await startTestService();
    const label = t.config.hsm.tokenLabel;
    expect(labels()).toContain(label);
    await t.stop();
    expect(labels()).not.toContain(label);
  });
});
