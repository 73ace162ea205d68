/**
 * GET /metrics: the Prometheus text format, exact values after known sequences of requests (API
 * requests, HSM calls, the audit chain's writes, keys by state, seals and rotations), its
 * protection (a bearer token on the API's port, or a listener of its own), and that a scrape is
 * neither audited nor in the access log.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { startService } from '../../src/server';
import { fetchResponse, kmsClient, type KmsClient, type KmsResponse } from '../helpers/client';
import { eventually } from '../helpers/eventually';
import { Metrics } from '../helpers/metrics';
import { startTestService, useTestService, type TestService } from '../helpers/service';
import { startShimService, type ShimService } from '../helpers/shim-service';

const TOKEN = 'metrics-token-0123456789abcdef';

/** A file holding the scrape token, in a directory of its own (removed by the caller). */
function tokenFile(token = TOKEN): { file: string; dir: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'kms-metrics-token-'));
  const file = path.join(dir, 'token');
  writeFileSync(file, `${token}\n`, { mode: 0o600 });
  return { file, dir };
}

/** GET `url` with `Bearer <token>`, or (null) without an Authorization header. */
async function scrapeAt(url: string, token: string | null = TOKEN): Promise<KmsResponse> {
  return fetchResponse(url, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
}

/** The metrics of the API port (behind the token), after asserting the answer is the text format. */
async function scrape(url: string): Promise<Metrics> {
  const response = await scrapeAt(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return Metrics.parse(response.body as string);
}

/**
 * What GET /metrics answers on the API port where it is not served there: what any path the
 * service does not serve answers (401 with the scrape token, which is no API credential; 400
 * KMS.0201 with the API's credential).
 */
async function notServedOn(t: TestService): Promise<{ withoutCredential: number; withCredential: number }> {
  const url = `${t.service.url}/metrics`;
  const withCredential = await fetchResponse(url, { headers: { 'x-auth-token': await t.token() } });
  expect(withCredential.body).toMatchObject({ error_code: 'KMS.0201' });
  return { withoutCredential: (await scrapeAt(url)).status, withCredential: withCredential.status };
}

function expectOk(response: KmsResponse): { key_info?: { key_id: string } } & Record<string, unknown> {
  expect({ status: response.status, body: response.body as unknown }).toEqual({ status: 200, body: expect.anything() });
  return response.body;
}

async function createKey(kms: KmsClient, alias: string): Promise<string> {
  return expectOk(await kms.call('create-key', { key_alias: alias })).key_info!.key_id;
}

describe('GET /metrics on the API port, behind a bearer token', () => {
  let token: { file: string; dir: string };
  const t = useTestService(() => {
    token = tokenFile();
    // No flush timer: the test flushes the seal counts itself, so that rotations happen when it says.
    return { env: { KMS_METRICS_TOKEN_FILE: token.file, KMS_SEAL_BUDGET: '3', KMS_SEAL_COUNT_FLUSH_SECONDS: '3600' } };
  });
  const kms = t.client();
  afterAll(() => {
    rmSync(token.dir, { recursive: true, force: true });
  });

  it('is 401 without the token or with a wrong one, and never logs the token or the refusal', async () => {
    const before = t.logs.lines.length;
    const url = `${t.service.url}/metrics`;
    for (const sent of [null, 'wrong-token-0123456789abcdef', `${TOKEN}x`, TOKEN.slice(0, -1), '']) {
      const refused = await scrapeAt(url, sent);
      expect({ sent, status: refused.status }).toEqual({ sent, status: 401 });
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(refused.body).not.toMatch(/kms_/);
    }
    // Another scheme, or the API's own credential, is no token either.
    expect((await fetchResponse(url, { headers: { authorization: `Basic ${TOKEN}` } })).status).toBe(401);
    expect((await fetchResponse(url, { headers: { 'x-auth-token': await t.token() } })).status).toBe(401);
    expect((await scrapeAt(url)).status).toBe(200);
    expect((await fetchResponse(url, { headers: { authorization: `bearer  ${TOKEN}` } })).status).toBe(200);
    const logged = t.logs.lines.slice(before).join('');
    expect(logged).not.toContain(TOKEN.slice(0, 12));
    expect(logged).not.toMatch(/metrics|unauthori[sz]ed/i);
  });

  it('labels the tag operations by their names (their paths end otherwise), never by a key id or a tag key', async () => {
    const keyId = await createKey(kms, 'metrics-tagged');
    const before = await scrape(t.service.url);
    expect((await kms.call(`${keyId}/tags`, { tag: { key: 'label-me', value: 'x' } })).status).toBe(204);
    expect((await kms.raw(`${keyId}/tags/label-me`, { method: 'DELETE' })).status).toBe(204);
    expect((await kms.raw(`${keyId}/tags/label-me`, { method: 'DELETE' })).status).toBe(404);
    expect((await kms.call('resource_instances/action', { action: 'count' })).status).toBe(200);
    const after = await scrape(t.service.url);
    expect(after.delta(before, 'kms_http_requests_total', { operation: 'create-kms-tag', status: '204' })).toBe(1);
    expect(after.delta(before, 'kms_http_requests_total', { operation: 'delete-tag', status: '204' })).toBe(1);
    expect(after.delta(before, 'kms_http_requests_total', { operation: 'delete-tag', status: '404' })).toBe(1);
    expect(after.delta(before, 'kms_http_requests_total', { operation: 'list-kms-by-tags', status: '200' })).toBe(1);
    const labelValues = after.samples.flatMap((sample) => Object.values(sample.labels));
    expect(labelValues.filter((value) => value.includes('label-me') || value.includes(keyId) || value === 'tags' || value === 'action')).toEqual([]);
  });

  it('counts N create-datakey and one 4xx exactly, with their latency histograms; the HSM calls and audit writes they made', async () => {
    const beforeKey = await scrape(t.service.url);
    const keyId = await createKey(kms, 'counted');
    const before = await scrape(t.service.url);
    // The key's material, generated once in the HSM.
    expect(before.delta(beforeKey, 'kms_hsm_call_duration_seconds_count', { function: 'generate_key' })).toBe(1);
    expect(before.delta(beforeKey, 'kms_http_requests_total', { operation: 'create-key', status: '200' })).toBe(1);
    const N = 3;
    for (let i = 0; i < N; i++) expectOk(await kms.call('create-datakey', { key_id: keyId }));
    const after200 = await scrape(t.service.url);
    // One 404: a key the project does not have.
    const missing = await kms.call('create-datakey', { key_id: '0b2c8f3e-1d2a-4c5b-8e9f-0a1b2c3d4e5f' });
    expect(missing.status).toBe(404);
    // A path no operation has: labelled `unknown`, never the path.
    const unknown = await kms.call('no-such-operation');
    expect(unknown.status).toBeGreaterThanOrEqual(400);
    const after = await scrape(t.service.url);

    const requests = (status: string) => ({ operation: 'create-datakey', status });
    expect(after.delta(before, 'kms_http_requests_total', requests('200'))).toBe(N);
    expect(after.delta(before, 'kms_http_requests_total', requests('404'))).toBe(1);
    expect(after.delta(before, 'kms_http_requests_total', { operation: 'unknown', status: String(unknown.status) })).toBe(1);
    expect(after.delta(before, 'kms_http_request_duration_seconds_count', { operation: 'create-datakey' })).toBe(N + 1);
    expect(after.value('kms_http_request_duration_seconds_bucket', { operation: 'create-datakey', le: '+Inf' })).toBe(
      after.value('kms_http_request_duration_seconds_count', { operation: 'create-datakey' }),
    );
    expect(after.value('kms_http_request_duration_seconds_sum', { operation: 'create-datakey' })).toBeGreaterThan(0);
    // No label holds a path, a project or a key id.
    const labelValues = after.samples.flatMap((sample) => Object.values(sample.labels));
    expect(labelValues.filter((value) => /\/|project-a|[0-9a-f]{8}-[0-9a-f]{4}/.test(value))).toEqual([]);
    // Scrapes are not API requests (they would be `unknown`, 200).
    expect(after.value('kms_http_requests_total', { operation: 'unknown', status: '200' })).toBeUndefined();

    // Operations whose path does not name them (the aliases'): by the operation's name.
    expect((await kms.call('aliases', { key_id: keyId, alias: 'alias/counted' })).status).toBe(201);
    expect((await kms.raw('aliases', { method: 'GET' })).status).toBe(200);
    const afterAliases = await scrape(t.service.url);
    expect(afterAliases.delta(after, 'kms_http_requests_total', { operation: 'create-alias', status: '201' })).toBe(1);
    expect(afterAliases.delta(after, 'kms_http_requests_total', { operation: 'list-aliases', status: '200' })).toBe(1);

    // Each data key is sealed once under the CMK in the HSM; none failed.
    expect(after200.delta(before, 'kms_hsm_call_duration_seconds_count', { function: 'encrypt' })).toBe(N);
    expect(after.all('kms_hsm_call_errors_total')).toEqual([]);
    // One audit record per request, each written in its own turn of the event loop; none failed.
    expect(after200.delta(before, 'kms_audit_write_duration_seconds_count')).toBe(N);
    expect(after.value('kms_audit_write_failures_total')).toBe(0);
    expect(after.delta(before, 'kms_seals_total')).toBe(N);
  });

  it('gives the session pool and the module re-initialisations from the HSM state', async () => {
    const metrics = await scrape(t.service.url);
    const state = t.service.hsm.state();
    expect(metrics.value('kms_hsm_session_pool_size')).toBe(state.sessions.size);
    expect(metrics.value('kms_hsm_sessions', { state: 'busy' })).toBe(0);
    expect(metrics.value('kms_hsm_sessions', { state: 'free' })).toBe(state.sessions.free);
    expect(metrics.value('kms_hsm_sessions', { state: 'abandoned' })).toBe(0);
    expect(metrics.value('kms_hsm_session_waiters')).toBe(0);
    expect(metrics.value('kms_hsm_backing_off')).toBe(0);
    expect(metrics.value('kms_hsm_reinitialisations_total', { reason: 'recovery' })).toBe(0);
    // The 404 above made this process re-read the token once before answering.
    expect(metrics.value('kms_hsm_reinitialisations_total', { reason: 'reread' })).toBe(state.rereads);
  });

  it('counts keys by state from the database, after create, disable and schedule-deletion', async () => {
    const before = await scrape(t.service.url);
    const keys = (state: string, metrics: Metrics) => metrics.value('kms_keys', { state });
    const ids = [await createKey(kms, 'state-1'), await createKey(kms, 'state-2'), await createKey(kms, 'state-3')];
    expectOk(await kms.call('disable-key', { key_id: ids[0] }));
    expectOk(await kms.call('schedule-key-deletion', { key_id: ids[1], pending_days: '7' }));
    // Keys of another project count too (no project label).
    await createKey(t.client('project-b'), 'other-project');
    const after = await scrape(t.service.url);
    expect(keys('enabled', after)! - keys('enabled', before)!).toBe(2);
    expect(keys('disabled', after)! - keys('disabled', before)!).toBe(1);
    expect(keys('pending_deletion', after)! - keys('pending_deletion', before)!).toBe(1);
    expect(keys('pending_activation', after)).toBe(0);
    expect(keys('pending_import', after)).toBe(0);
    // Exactly the database's count: the keys this file made ('metrics-tagged', 'counted' and these four), none else.
    expect({ enabled: keys('enabled', after), disabled: keys('disabled', after), pending: keys('pending_deletion', after) }).toEqual({ enabled: 4, disabled: 1, pending: 1 });
  });

  it('counts rotations by reason and shows how much of the seal budget the busiest key used', async () => {
    const keyId = await createKey(kms, 'budget');
    const before = await scrape(t.service.url);
    expect(before.value('kms_seal_budget')).toBe(3);
    expect(before.value('kms_key_rotations_total', { reason: 'budget' })).toBe(0);
    expectOk(await kms.call('rotate-on-demand', { key_id: keyId }));
    for (let i = 0; i < 3; i++) expectOk(await kms.call('create-datakey', { key_id: keyId }));
    await t.service.usage.flush({ rotate: false });
    const used = await scrape(t.service.url);
    expect(used.value('kms_seal_budget_used_max_ratio')).toBe(1);
    await t.service.rotator.rotateOverBudget();
    const after = await scrape(t.service.url);
    expect(after.delta(before, 'kms_key_rotations_total', { reason: 'on-demand' })).toBe(1);
    // This key, and the 'counted' key of the test before (3 seals under version 0), in one pass.
    expect(after.delta(before, 'kms_key_rotations_total', { reason: 'budget' })).toBe(2);
    expect(after.value('kms_key_rotations_total', { reason: 'scheduled' })).toBe(0);
    expect(after.value('kms_key_rotation_failures_total', { reason: 'budget' })).toBe(0);
    // The earlier 'counted' key (3 seals, budget 3) was rotated by the same pass: every current version is fresh.
    expect(after.value('kms_seal_budget_used_max_ratio')).toBe(0);
  });

  it('is neither audited nor in the access log, where the API call beside it is', async () => {
    await new Promise((resolve) => setImmediate(resolve));
    const audit = readFileSync(t.config.auditLogPath, 'utf8');
    const lines = t.logs.lines.length;
    await scrape(t.service.url);
    expectOk(await kms.call('list-keys'));
    await new Promise((resolve) => setImmediate(resolve));
    const added = readFileSync(t.config.auditLogPath, 'utf8').slice(audit.length).split('\n').filter(Boolean);
    expect(added.map((line) => (JSON.parse(line) as { action: string }).action)).toEqual(['list-keys']);
    const logged = t.logs.lines.slice(lines).filter((line) => line.includes('"msg":"request"'));
    expect(logged.map((line) => (JSON.parse(line) as { operation: string }).operation)).toEqual(['list-keys']);
  });
});

describe('audit write failures', () => {
  it('are counted: the write that failed, and the retry that refused the next operation', async () => {
    const token = tokenFile();
    const t = await startTestService({ env: { KMS_METRICS_TOKEN_FILE: token.file } });
    try {
      const logger = createLogger('silent');
      // /dev/full takes the file open and refuses every write (ENOSPC), as a full disk does.
      const broken = await startService(t.config, { logger, clock: t.clock.read, validateResponses: true, auditLogPath: '/dev/full' });
      try {
        const kms = kmsClient(broken.url, 'project-a', { 'x-auth-token': await t.token() });
        // The first list-keys ran, but its record could not be written: it is answered 503.
        expect((await kms.call('list-keys')).status).toBe(503);
        // The next is refused before it runs, and starts one more try of the write.
        expect((await kms.call('list-keys')).status).toBe(503);
        let metrics = await scrape(broken.url);
        for (let i = 0; metrics.value('kms_audit_write_failures_total')! < 2 && i < 100; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
          metrics = await scrape(broken.url);
        }
        // The first list-keys' write failed, and so did the retry the second one started.
        const failures = metrics.value('kms_audit_write_failures_total')!;
        expect(failures).toBeGreaterThanOrEqual(2);
        expect(metrics.value('kms_audit_write_duration_seconds_count')).toBe(failures);
        expect(metrics.value('kms_http_requests_total', { operation: 'list-keys', status: '503' })).toBe(2);
      } finally {
        await broken.close().catch(() => undefined);
      }
    } finally {
      await t.stop();
      rmSync(token.dir, { recursive: true, force: true });
    }
  });
});

describe('GET /metrics on a listener of its own (KMS_METRICS_PORT)', () => {
  it('needs no token there, is not on the API port, and answers nothing else', async () => {
    const t = await startTestService({ env: { KMS_METRICS_PORT: '0' } });
    try {
      const url = t.service.metricsUrl!;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      expectOk(await t.client().call('list-keys'));
      const scraped = await scrapeAt(url, null);
      expect(scraped.status).toBe(200);
      const metrics = Metrics.parse(scraped.body as string);
      expect(metrics.value('kms_http_requests_total', { operation: 'list-keys', status: '200' })).toBe(1);
      expect(await notServedOn(t)).toEqual({ withoutCredential: 401, withCredential: 400 });
      expect((await fetchResponse(url.replace('/metrics', '/other'))).status).toBe(404);
      expect((await fetchResponse(url, { method: 'POST' })).status).toBe(405);
    } finally {
      await t.stop();
    }
  });

  it('asks for the token there too when a token file is configured', async () => {
    const token = tokenFile();
    const t = await startTestService({ env: { KMS_METRICS_PORT: '0', KMS_METRICS_HOST: '127.0.0.1', KMS_METRICS_TOKEN_FILE: token.file } });
    try {
      const url = t.service.metricsUrl!;
      expect((await scrapeAt(url, null)).status).toBe(401);
      expect((await scrapeAt(url, 'wrong-token-0123456789abcdef')).status).toBe(401);
      expect((await scrapeAt(url)).status).toBe(200);
      expect(await notServedOn(t)).toEqual({ withoutCredential: 401, withCredential: 400 });
    } finally {
      await t.stop();
      rmSync(token.dir, { recursive: true, force: true });
    }
  });
});

describe('without metrics configured', () => {
  it('GET /metrics is an unknown path, and nothing listens for it', async () => {
    const t = await startTestService();
    try {
      expect(await notServedOn(t)).toEqual({ withoutCredential: 401, withCredential: 400 });
      expect(t.service.metricsUrl).toBeUndefined();
    } finally {
      await t.stop();
    }
  });
});

describe('HSM errors by operation and CKR, through the fault shim', () => {
  const CKR_FUNCTION_FAILED = 0x6;
  const CKR_DEVICE_ERROR = 0x30;
  const CKR_DEVICE_MEMORY = 0x31;
  let shim: ShimService;
  let token: { file: string; dir: string };
  beforeAll(async () => {
    token = tokenFile();
    shim = await startShimService({ KMS_METRICS_TOKEN_FILE: token.file, KMS_PKCS11_CALL_TIMEOUT_MS: '500' });
  });
  afterAll(async () => {
    await shim.stop();
    rmSync(token.dir, { recursive: true, force: true });
  });

  it('counts each refused call by its CKR name, and the recovery a module failure caused', async () => {
    const keyId = await createKey(shim.kms, 'faults');
    const before = await scrape(shim.url);
    expect(before.value('kms_hsm_reinitialisations_total', { reason: 'recovery' })).toBe(0);

    // A module failure: re-initialised once, the encryption retried, the request served.
    shim.fail(CKR_DEVICE_ERROR, 'C_Encrypt');
    expectOk(await shim.kms.call('create-datakey', { key_id: keyId }));
    // Any other failure: 500, no retry.
    shim.fail(CKR_FUNCTION_FAILED, 'C_Encrypt');
    expect((await shim.kms.call('create-datakey', { key_id: keyId })).status).toBe(500);
    // An HSM out of memory: 503, no retry.
    shim.fail(CKR_DEVICE_MEMORY, 'C_GenerateKey');
    expect((await shim.kms.call('create-key', { key_alias: 'no-memory' })).status).toBe(503);
    expect(shim.failurePending()).toBe(false);
    const after = await scrape(shim.url);

    const errors = after.all('kms_hsm_call_errors_total').map(({ labels, value }) => ({ function: labels.function, ckr: labels.ckr ?? '', value }));
    expect(errors.sort((a, b) => a.ckr.localeCompare(b.ckr))).toEqual([
      { function: 'encrypt', ckr: 'CKR_DEVICE_ERROR', value: 1 },
      { function: 'generate_key', ckr: 'CKR_DEVICE_MEMORY', value: 1 },
      { function: 'encrypt', ckr: 'CKR_FUNCTION_FAILED', value: 1 },
    ]);
    expect(after.value('kms_hsm_reinitialisations_total', { reason: 'recovery' })).toBe(1);
    // Three attempts of encrypt (the failed one, its retry, the one that failed for good), each timed.
    expect(after.delta(before, 'kms_hsm_call_duration_seconds_count', { function: 'encrypt' })).toBe(3);
    expect(after.delta(before, 'kms_http_requests_total', { operation: 'create-datakey', status: '200' })).toBe(1);
    expect(after.delta(before, 'kms_http_requests_total', { operation: 'create-datakey', status: '500' })).toBe(1);
    expect(after.delta(before, 'kms_http_requests_total', { operation: 'create-key', status: '503' })).toBe(1);
  });

  it('counts a call that hangs past its deadline, and shows its session abandoned until it comes back', async () => {
    const keyId = await createKey(shim.kms, 'hangs');
    const before = await scrape(shim.url);
    writeFileSync(shim.hangFile, 'C_Encrypt\n');
    try {
      expect((await shim.kms.call('create-datakey', { key_id: keyId })).status).toBe(503);
      expect(shim.hungCalls()).toEqual(['C_Encrypt']);
      const hanging = await scrape(shim.url);
      expect(hanging.delta(before, 'kms_hsm_call_timeouts_total', { function: 'encrypt' })).toBe(1);
      expect(hanging.value('kms_hsm_sessions', { state: 'abandoned' })).toBe(1);
      // The hung call is not in the histogram: it has not ended.
      expect(hanging.delta(before, 'kms_hsm_call_duration_seconds_count', { function: 'encrypt' })).toBe(0);
    } finally {
      rmSync(shim.hangFile, { force: true });
    }
    const after = await eventually('the abandoned session to come back once the call answers', () => scrape(shim.url), {
      until: (metrics) => metrics.value('kms_hsm_sessions', { state: 'abandoned' }) === 0,
    });
    expect(after.value('kms_hsm_sessions', { state: 'abandoned' })).toBe(0);
  });
});

describe('docker-compose.yml', () => {
  it('serves the metrics on a listener of their own, published on loopback only', () => {
    const compose = parse(readFileSync(path.join(__dirname, '..', '..', 'docker-compose.yml'), 'utf8')) as {
      services: { kms: { ports: string[]; environment: Record<string, string> } };
    };
    const { ports, environment } = compose.services.kms;
    const config = loadConfig({ ...environment, KMS_DATA_DIR: '/tmp/kms-compose-test' });
    expect(config.metrics).toEqual({ kind: 'listener', host: '0.0.0.0', port: 9464, token: undefined });
    expect(ports).toContain('127.0.0.1:9464:9464');
  });
});
