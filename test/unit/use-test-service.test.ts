/**
 * useTestService (test/helpers/service.ts) stops the service it started whatever became of the
 * suite's set-up: shown with Jest itself, on the project's configuration, over fixture suites that
 * fail on purpose (test/fixtures/use-test-service): one whose beforeAll after the start throws, one
 * whose start outlasts its hook's timeout. Each records, in an afterAll after the helper's, whether
 * its service's data directory and SoftHSM token were gone by then. A third, which passes, records
 * the same in an afterAll declared before the helper's, which runs first (suites close there what
 * must close before the service stops), and in one declared after it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runJest } from '../helpers/run-jest';

const CONFIG = path.resolve(__dirname, '..', 'fixtures', 'use-test-service', 'jest.config.js');

describe('useTestService', () => {
  let dir: string;
  let run: { code: number | null; output: string };
  let stops: string[];
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-use-test-service-'));
    const log = path.join(dir, 'stops');
    run = await runJest(CONFIG, { KMS_USE_TEST_SERVICE_LOG: log });
    stops = readFileSync(log, 'utf8').trim().split('\n');
  }, 120_000);
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops the service when a later beforeAll fails, and when the start outlasted its hook', () => {
    // Both fixtures fail, as meant, and for the reasons meant; the third passes.
    expect(run.code).toBe(1);
    expect(run.output).toContain('the suite set-up after the start failed');
    expect(run.output).toMatch(/Exceeded timeout of 1 ms/);
    expect(run.output).toContain('Tests:       2 failed, 1 passed, 3 total');
    expect(stops.filter((line) => !line.startsWith('declared-')).sort()).toEqual([
      'later-hook-fails data-dir:removed token:removed',
      'start-outlasts-hook data-dir:removed token:removed',
    ]);
  });

  it('runs an afterAll declared before it while the service is there, and one declared after it once stopped', () => {
    // In the order they ran: the fixtures run one at a time.
    expect(stops.filter((line) => line.startsWith('declared-'))).toEqual([
      'declared-before-the-helper data-dir:left token:left',
      'declared-after-the-helper data-dir:removed token:removed',
    ]);
  });
});
