import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
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

  it('drops a ticket whose DELETE failed once the queue can be written again: it does not block every later turn', async () => {
    const other = new TokenLock(path.join(dir, 'hsm.lock'));
    // A writer on the queue past its busy timeout, from the moment the work runs: the turn's end
    // cannot delete its ticket (SQLITE_BUSY after 1 s).
    const blocker = new Database(path.join(dir, 'hsm.lock-queue'));
    try {
      await lock.hold(() => {
        blocker.exec('BEGIN IMMEDIATE');
      });
      // The turn ends after its caller is told: its DELETE waits out the busy timeout, and fails.
      await new Promise((resolve) => setTimeout(resolve, 50));
      blocker.exec('COMMIT');
      // The ticket's owner lives, so nothing but its own process can drop it.
      await expect(other.hold(() => 'after', 5000)).resolves.toBe('after');
    } finally {
      if (blocker.inTransaction) blocker.exec('ROLLBACK');
      blocker.close();
      other.close();
    }
  });

  it('passes on what the work throws and stays usable', async () => {
    await expect(lock.hold(() => Promise.reject(new Error('work failed')))).rejects.toThrow('work failed');
    await expect(lock.hold(() => 42)).resolves.toBe(42);
  });

  describe('across processes', () => {
    /** Another process on the lock (token-lock-child.ts), and the lines it has printed so far. */
    interface Child {
      readonly process: ChildProcessWithoutNullStreams;
      readonly lines: string[];
      /** Resolves once it has printed `line` `count` times in all. */
      printed(line: string, count?: number): Promise<void>;
      send(line: string): void;
    }

    const children: Child[] = [];

    function startChild(): Child {
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'token-lock-child.ts'), path.join(dir, 'hsm.lock')]);
      const lines: string[] = [];
      const waiting: Array<() => void> = [];
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        lines.push(...parts);
        for (const wake of waiting.splice(0)) wake();
      });
      const handle: Child = {
        process: child,
        lines,
        printed: (line, count = 1) =>
          new Promise<void>((resolve, reject) => {
            const check = (): void => {
              if (lines.filter((seen) => seen === line).length >= count) resolve();
              else if (child.exitCode !== null || child.signalCode !== null) reject(new Error(`the child ended before printing ${line}: ${lines.join(', ')}`));
              else waiting.push(check);
            };
            child.once('exit', () => waiting.push(check) && check());
            check();
          }),
        send: (line) => child.stdin.write(`${line}\n`),
      };
      children.push(handle);
      return handle;
    }

    afterEach(() => {
      for (const child of children.splice(0)) child.process.kill('SIGKILL');
    });

    it('serves callers in the order they asked, across processes: a caller of the holder\'s process does not pass another process\'s earlier one', async () => {
      const child = startChild();
      await child.printed('ready');
      const order: string[] = [];
      for (let round = 1; round <= 3; round++) {
        let release!: () => void;
        const first = lock.hold(() => new Promise<void>((resolve) => (release = resolve)));
        await new Promise((resolve) => setImmediate(resolve)); // this process holds it now
        child.send('hold');
        await child.printed('queued', round);
        const second = lock.hold(() => {
          order.push(`this process's second caller, round ${round}`);
        });
        release();
        await first;
        await child.printed('acquired', round);
        order.push(`the other process, round ${round}`);
        child.send('release');
        await second;
      }
      expect(order).toEqual([1, 2, 3].flatMap((round) => [`the other process, round ${round}`, `this process's second caller, round ${round}`]));
    });

    it('serves the callers of a process who asked while its turn waited in that turn, before a turn that took its ticket later', async () => {
      const child = startChild();
      await child.printed('ready');
      child.send('hold');
      await child.printed('acquired');
      const order: string[] = [];
      const first = lock.hold(() => {
        order.push('this process, first');
      });
      child.send('hold');
      await child.printed('queued', 2); // the other process's second turn: its ticket comes after this process's turn
      const joined = lock.hold(() => {
        order.push('this process, second (joined the waiting turn)');
      });
      child.send('release');
      await Promise.all([first, joined]);
      await child.printed('acquired', 2);
      order.push('the other process, second');
      child.send('release');
      await child.printed('released', 2);
      expect(order).toEqual(['this process, first', 'this process, second (joined the waiting turn)', 'the other process, second']);
    });

    it('passes over the ticket of a process killed (SIGKILL) while it waited, and takes the lock a killed holder had', async () => {
      const waiter = startChild();
      await waiter.printed('ready');
      let release!: () => void;
      const first = lock.hold(() => new Promise<void>((resolve) => (release = resolve)));
      await new Promise((resolve) => setImmediate(resolve));
      waiter.send('hold');
      await waiter.printed('queued');
      const afterTheDead = lock.hold(() => 'served after the dead waiter', 10_000);
      waiter.process.kill('SIGKILL');
      await new Promise((resolve) => waiter.process.once('exit', resolve));
      release();
      await first;
      await expect(afterTheDead).resolves.toBe('served after the dead waiter');

      const holder = startChild();
      await holder.printed('ready');
      holder.send('hold');
      await holder.printed('acquired');
      const afterTheDeadHolder = lock.hold(() => 'served after the dead holder', 10_000);
      holder.process.kill('SIGKILL');
      await expect(afterTheDeadHolder).resolves.toBe('served after the dead holder');
      // The dead processes' liveness files are gone with their tickets; this process's stays.
      expect(readdirSync(path.join(dir, 'hsm.lock-processes')).filter((name) => !name.endsWith('-journal'))).toHaveLength(1);
    });
  });
});
