/**
 * useTestService (test/helpers/service.ts) stops the service it started whatever became of the
 * suite's set-up: shown with Jest itself, on the project's configuration, over fixture suites that
 * fail on purpose (test/fixtures/use-test-service): one whose beforeAll after the start throws, one
 * whose start outlasts its hook's timeout. Each records, in an afterAll after the helper's, whether
 * its service's data directory and SoftHSM token were gone by then.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runJest } from '../helpers/run-jest';

const CONFIG = path.resolve(__dirname, '..', 'fixtures', 'use-test-service', 'jest.config.js');

describe('useTestService', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'kms-use-test-service-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops the service when a later beforeAll fails, and when the start outlasted its hook', async () => {
    const log = path.join(dir, 'stops');
    const { code, output } = await runJest(CONFIG, { KMS_USE_TEST_SERVICE_LOG: log });
    // Both fixtures fail, as meant, and for the reasons meant.
    expect(code).toBe(1);
    expect(output).toContain('the suite set-up after the start failed');
    expect(output).toMatch(/Exceeded timeout of 1 ms/);
    expect(output).toContain('Tests:       2 failed, 2 total');
    expect(readFileSync(log, 'utf8').trim().split('\n').sort()).toEqual([
      'later-hook-fails data-dir:removed token:removed',
      'start-outlasts-hook data-dir:removed token:removed',
    ]);
  }, 120_000);
});
