import type { Hsm } from '../hsm/hsm';
import type { HsmPing } from './readiness';

/**
 * Bytes asked of Hsm.random by the probe: more than the random pool's block (4096 bytes, see
 * src/hsm/random-pool.ts), so that the pool cannot serve them from what it holds and must call
 * C_GenerateRandom on a pooled session. random(1) would usually be served from the pool without
 * reaching the HSM at all.
 */
const PAST_THE_POOL = 4097;

/**
 * The readiness probe's HSM call, until the seam has its own: replaced by `Hsm.ping()` (a
 * C_GetSessionInfo on a pooled session within the deadline) once src/hsm provides it.
 */
export function hsmPing(hsm: Pick<Hsm, 'random'>): HsmPing {
  return {
    async ping() {
      const bytes = await hsm.random(PAST_THE_POOL);
      bytes.fill(0);
    },
  };
}
