import { PoolBusyError, SessionPool } from '../../src/hsm/session-pool';

/** A pool over fake sessions: each "session" is a buffer holding the module generation it was opened in. */
function pool(size: number, maxWaiters = 100) {
  const state = { moduleGeneration: 0, opened: 0, closed: [] as number[] };
  const sessions = new SessionPool({
    size,
    maxWaiters,
    open: () => {
      state.opened++;
      return Buffer.from([state.moduleGeneration]);
    },
    close: (session) => state.closed.push(session[0]!),
  });
  return { sessions, state };
}

describe('the session pool', () => {
  it('lends at most `size` sessions and queues the rest in order', async () => {
    const { sessions, state } = pool(2);
    const a = await sessions.acquire();
    const b = await sessions.acquire();
    const order: string[] = [];
    const c = sessions.acquire().then((lease) => (order.push('c'), lease));
    const d = sessions.acquire().then((lease) => (order.push('d'), lease));
    expect(state.opened).toBe(2);
    sessions.release(a);
    sessions.release(b);
    await Promise.all([c, d]);
    expect(order).toEqual(['c', 'd']);
    expect(state.opened).toBe(2);
  });

  it('lends an idle session at once with tryAcquire, and never opens one or jumps the queue with it', async () => {
    const { sessions, state } = pool(1);
    expect(sessions.tryAcquire()).toBeUndefined(); // nothing open yet: acquire() opens
    expect(state.opened).toBe(0);
    const a = await sessions.acquire();
    expect(sessions.tryAcquire()).toBeUndefined(); // the one session is out
    const waiting = sessions.acquire();
    sessions.release(a); // goes to the waiter, not to the next tryAcquire
    expect(sessions.tryAcquire()).toBeUndefined();
    const b = await waiting;
    sessions.release(b);
    const c = sessions.tryAcquire();
    expect(c?.session).toBe(b.session);
    expect(sessions.state()).toMatchObject({ busy: 1, free: 0 });
    sessions.release(c!);
    sessions.close();
    expect(sessions.tryAcquire()).toBeUndefined();
  });

  it('opens no session while the module is being re-initialised, and only new ones after', async () => {
    const { sessions, state } = pool(2);
    const a = await sessions.acquire();
    const b = await sessions.acquire();
    const waiting = sessions.acquire();
    sessions.reset(); // the module is about to be re-initialised
    sessions.discard(a); // the failed caller drops its session
    sessions.release(b); // another caller finishes on the old module
    let served = false;
    void waiting.then(() => (served = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(served).toBe(false);
    expect(sessions.busy).toBe(0);

    state.moduleGeneration = 1; // C_Finalize + C_Initialize happened
    sessions.resume();
    const lease = await waiting;
    expect(lease.session[0]).toBe(1);
    expect(lease.generation).toBe(sessions.currentGeneration);
    // Sessions of the old module are never handed out again, nor closed on the new one.
    expect(state.closed).toEqual([]);
  });

  it('replaces a discarded session for the next caller', async () => {
    const { sessions, state } = pool(1);
    const a = await sessions.acquire();
    const next = sessions.acquire();
    sessions.discard(a);
    await next;
    expect(state.opened).toBe(2);
    expect(state.closed).toEqual([0]);
  });

  it('refuses a caller at once when every waiting place is taken', async () => {
    const { sessions } = pool(1, 2);
    await sessions.acquire();
    void sessions.acquire();
    void sessions.acquire();
    expect(sessions.state()).toMatchObject({ busy: 1, free: 0, waiters: 2 });
    await expect(sessions.acquire()).rejects.toEqual(new PoolBusyError('queue full'));
    expect(sessions.state().waiters).toBe(2);
  });

  it('ends a wait for a session at its deadline and gives up its waiting place', async () => {
    const { sessions } = pool(1, 1);
    const held = await sessions.acquire();
    await expect(sessions.acquire(20)).rejects.toEqual(new PoolBusyError('deadline'));
    expect(sessions.state().waiters).toBe(0);
    // The place is free again, and the session goes to the next caller, not to the one that gave up.
    const next = sessions.acquire(10_000);
    sessions.release(held);
    expect(await next).toBe(held);
  });

  it('replaces an abandoned session at once and closes it only when its call comes back', async () => {
    const { sessions, state } = pool(1);
    const hung = await sessions.acquire();
    const waiting = sessions.acquire();
    let callReturns!: () => void;
    const call = new Promise<void>((resolve) => (callReturns = resolve));
    sessions.abandon(hung, call);
    const replacement = await waiting;
    expect(replacement).not.toBe(hung);
    expect(state.opened).toBe(2);
    expect(sessions.state()).toMatchObject({ busy: 1, abandoned: 1 });
    expect(state.closed).toEqual([]);

    callReturns();
    await call;
    await new Promise((resolve) => setImmediate(resolve));
    expect(state.closed).toEqual([0]);
    expect(sessions.state().abandoned).toBe(0);
    // The hung session is never lent again.
    sessions.release(replacement);
    expect(await sessions.acquire()).toBe(replacement);
  });

  it('opens no more than twice its size while abandoned calls hang', async () => {
    const { sessions, state } = pool(1);
    const never = new Promise<void>(() => undefined);
    sessions.abandon(await sessions.acquire(), never);
    const second = await sessions.acquire();
    sessions.abandon(second, never);
    await expect(sessions.acquire(20)).rejects.toEqual(new PoolBusyError('deadline'));
    expect(state.opened).toBe(2);
  });

  it('stops waiting for leased sessions after the drain timeout, and forgets them', async () => {
    const { sessions, state } = pool(2);
    const stuck = await sessions.acquire();
    sessions.reset();
    expect(await sessions.drained(20)).toBe(false);
    expect(sessions.busy).toBe(0);
    sessions.resume();
    // The forgotten session coming back later changes nothing, and is not closed on the new module.
    sessions.release(stuck);
    expect(sessions.busy).toBe(0);
    expect(state.closed).toEqual([]);
    expect(await sessions.drained(20)).toBe(true);
  });
});
