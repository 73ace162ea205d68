import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expectKmsError, fetchResponse, type KmsResponse } from '../helpers/client';
import { eventually } from '../helpers/eventually';
import { Metrics } from '../helpers/metrics';
import { startShimService, type ShimService } from '../helpers/shim-service';

/**
 * Deadlines and back-pressure between HTTP and the HSM, through the shim on a real SoftHSM token:
 * a network HSM that stops answering, runs out of sessions, or cannot be initialised again. One
 * worker with one session and one waiting place, so that one hung call fills the pool.
 */
let shim: ShimService;
let keyId: string;
/** The scrape token of GET /metrics on the API port: the tests read the HSM seam's state there. */
const METRICS_TOKEN = 'deadlines-metrics-0123456789';
const metricsDir = mkdtempSync(path.join(tmpdir(), 'kms-deadlines-'));

beforeAll(async () => {
  const tokenFile = path.join(metricsDir, 'metrics-token');
  writeFileSync(tokenFile, `${METRICS_TOKEN}\n`, { mode: 0o600 });
  shim = await startShimService({
    KMS_WORKERS: '1',
    KMS_PKCS11_SESSIONS: '1',
    KMS_PKCS11_MAX_WAITERS: '1',
    KMS_PKCS11_CALL_TIMEOUT_MS: '3000',
    KMS_METRICS_TOKEN_FILE: tokenFile,
  });
  keyId = (await shim.kms.call('create-key', { key_alias: 'deadlines' })).body.key_info.key_id;
  // The first data key fills the random pool, so that later requests only encrypt.
  expect((await shim.kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
}, 30_000);

afterAll(async () => {
  await shim?.stop();
  rmSync(metricsDir, { recursive: true, force: true });
});

const dataKey = (): Promise<KmsResponse> => shim.kms.call('create-datakey', { key_id: keyId });

/** Resolves once `count` calls have hung in the shim (its call log). */
async function hung(count: number): Promise<void> {
  await eventually(`${count} calls to hang in the shim`, () => shim.hungCalls(), { until: (calls) => calls.length >= count, everyMs: 10 });
}

/** The service's metrics now: the HSM seam's state, read when asked (no log line through a pipe). */
async function metrics(): Promise<Metrics> {
  const response = await fetchResponse(`${shim.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(response.status).toBe(200);
  return Metrics.parse(response.body as string);
}

/** The HSM seam's re-initialisation state: attempts made (failed ones included) and whether it backs off now. */
async function reinitialisation(): Promise<{ attempts: number | undefined; backingOff: number | undefined }> {
  const now = await metrics();
  return { attempts: now.value('kms_hsm_reinitialisations_total', { reason: 'recovery' }), backingOff: now.value('kms_hsm_backing_off') };
}

/** Tracks whether a request has been answered yet. */
function tracked(request: Promise<KmsResponse>): { request: Promise<KmsResponse>; answered: () => boolean } {
  let done = false;
  void request.finally(() => (done = true));
  return { request, answered: () => done };
}

describe('deadlines and back-pressure', () => {
  it('a hung encryption: 503 KMS.0104 while the HSM still hangs, and service again once it answers', async () => {
    writeFileSync(shim.hangFile, 'C_Encrypt\n');
    const response = await dataKey();
    expectKmsError(response, 503, 'KMS.0104');
    // The answer came while the call was still hanging in the HSM.
    expect(shim.hungCalls()).toEqual(['C_Encrypt']);
    expect(existsSync(shim.hangFile)).toBe(true);
    expect(await shim.logged('the session is abandoned')).toBe(true);

    rmSync(shim.hangFile);
    expect((await dataKey()).status).toBe(200);
    expect((await dataKey()).status).toBe(200);
  });

  it('a caller beyond the waiting queue gets 503 at once, not at the deadline', async () => {
    const before = shim.hungCalls().length;
    writeFileSync(shim.hangFile, 'C_Encrypt\n');
    const holder = tracked(dataKey()); // holds the only session, hanging
    await hung(before + 1);
    const others = [dataKey(), dataKey()]; // one waits for the session, the other finds no place
    const first = await Promise.race(others);
    expectKmsError(first, 503, 'KMS.0104');
    expect(holder.answered()).toBe(false);

    rmSync(shim.hangFile);
    for (const response of await Promise.all([holder.request, ...others])) expect([200, 503]).toContain(response.status);
    expect((await dataKey()).status).toBe(200);
  });

  it('CKR_SESSION_COUNT when a session is opened: 503 KMS.0104, and service again once the HSM has sessions', async () => {
    // The session is lost, and the HSM refuses the new one the retry asks for.
    writeFileSync(shim.failFile, '0xb3 C_Encrypt\n0xb1 always C_OpenSession\n');
    expectKmsError(await dataKey(), 503, 'KMS.0104');
    expect(await shim.logged('CKR_SESSION_COUNT')).toBe(true);

    rmSync(shim.failFile);
    expect((await dataKey()).status).toBe(200);
  });

  it('a re-initialisation that fails backs off: 503 at once and no new attempt until the back-off ends, then service again', async () => {
    // Attempts and the back-off are read from the service's state (its metrics), not counted in log
    // lines, which arrive through a pipe some time after the response: the count is there when the
    // 503 is. Only when each back-off ends is taken from the failed attempt's log line (its time
    // and retryInMs), so that no assertion depends on how fast this machine is.
    const before = await reinitialisation();
    expect(before.backingOff).toBe(0);
    const attemptsBefore = before.attempts ?? 0;
    const outputBefore = shim.output().length;
    /** The failed attempts of this test, from their log lines: when each one's back-off ends. */
    const backoffEnds = (): number[] =>
      shim
        .output()
        .slice(outputBefore)
        .split('\n')
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as { msg?: string; time?: number; retryInMs?: number }];
          } catch {
            return [];
          }
        })
        .filter((line) => line.msg?.startsWith('HSM re-initialisation failed') && line.time !== undefined && line.retryInMs !== undefined)
        .map((line) => line.time! + line.retryInMs!);

    writeFileSync(shim.failFile, '0x32 C_Encrypt\n0x30 always C_Initialize\n'); // CKR_DEVICE_REMOVED, then C_Initialize fails
    expectKmsError(await dataKey(), 503, 'KMS.0104');
    expect(await reinitialisation()).toEqual({ attempts: attemptsBefore + 1, backingOff: 1 });

    // A request answered before the back-off ends gets 503 and makes no attempt. One that came later
    // (a slow machine) makes the next attempt, which fails and backs off twice as long: try again.
    await eventually('a request answered within a back-off', async () => {
      const now = await reinitialisation();
      const failed = now.attempts! - attemptsBefore;
      const ends = await eventually(`the log line of failed attempt ${failed}`, backoffEnds, { until: (found) => found.length === failed });
      const response = await dataKey();
      const answeredAt = Date.now();
      expectKmsError(response, 503, 'KMS.0104');
      if (answeredAt >= ends[failed - 1]!) return false;
      expect(await reinitialisation()).toEqual({ attempts: now.attempts, backingOff: 1 });
      return true;
    }, { limitMs: 20_000, everyMs: 1 });

    rmSync(shim.failFile);
    const response = await eventually('a data key once the HSM initialises again', dataKey, { until: (reply) => reply.status !== 503, everyMs: 100 });
    expect(response.status).toBe(200);
    expect((await reinitialisation()).backingOff).toBe(0);
    expect(await shim.logged('HSM re-initialised after failed attempts')).toBe(true);
  });
});
