import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TokenLock } from '../../src/hsm/token-lock';

describe('the token lock', () => {
  let dir: string;
  let lock: TokenLock;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kms-lock-'));
    lock = new TokenLock(path.join(dir, 'hsm.lock'));
  });

  afterEach(() => {
    lock.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives a caller queued in this process 503 at its wait limit, without running its work, and serves the next one', async () => {
    let release!: () => void;
    const first = lock.hold(() => new Promise<void>((resolve) => (release = resolve)));
    let ranLate = false;
    const late = lock.hold(() => {
      ranLate = true;
    }, 50);
    await expect(late).rejects.toMatchObject({ code: 'KMS.0104' });
    expect(ranLate).toBe(false);
    release();
    await first;
    await expect(lock.hold(() => 'next')).resolves.toBe('next');
    expect(ranLate).toBe(false);
  });

  it('gives 503 when another process holds it past the wait limit', async () => {
    const other = new TokenLock(path.join(dir, 'hsm.lock'));
    let release!: () => void;
    const held = other.hold(() => new Promise<void>((resolve) => (release = resolve)));
    try {
      await expect(lock.hold(() => 'never', 100)).rejects.toMatchObject({ name: 'KmsError', code: 'KMS.0104' });
    } finally {
      release();
      await held;
      other.close();
    }
    await expect(lock.hold(() => 'after')).resolves.toBe('after');
  });

  it('passes on what the work throws and stays usable', async () => {
    await expect(lock.hold(() => Promise.reject(new Error('work failed')))).rejects.toThrow('work failed');
    await expect(lock.hold(() => 42)).resolves.toBe(42);
  });
});
