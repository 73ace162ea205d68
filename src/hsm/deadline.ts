/** The call deadline passed before the call (or the wait) ended. */
export class DeadlinePassed extends Error {
  constructor() {
    super('the HSM call deadline passed');
    this.name = 'DeadlinePassed';
  }
}

/**
 * `work`'s result, or {@link DeadlinePassed} at `deadline` (a performance.now() time). Work already
 * settled wins even past the deadline: a synchronous call that took too long has still succeeded.
 */
export async function beforeDeadline<T>(work: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const passed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlinePassed()), Math.max(0, deadline - performance.now()));
  });
  try {
    return await Promise.race([work, passed]);
  } finally {
    clearTimeout(timer);
  }
}
