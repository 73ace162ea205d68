import { SessionPool } from '../../src/hsm/session-pool';

/** A pool over fake sessions: each "session" is a buffer holding the module generation it was opened in. */
function pool(size: number) {
  const state = { moduleGeneration: 0, opened: 0, closed: [] as number[] };
  const sessions = new SessionPool({
    size,
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
});
