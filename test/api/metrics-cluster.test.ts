/**
 * The metrics of a cluster (a primary and two workers on one data directory): each worker counts
 * its own, the primary aggregates them (prom-client's AggregatorRegistry over IPC), so that a
 * scrape gives the whole service's totals, on the API port through either worker or on the
 * primary's own listener; what every worker reads from the shared database is counted once.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { eventually } from '../helpers/eventually';
import { Metrics } from '../helpers/metrics';
import { makeDataDir } from '../helpers/service';
import {
  exitOf,
  postAlone,
  processEnv,
  readAdminCredentials,
  runUntilExit,
  startProcess,
  workersThatServed,
  type AdminCredentials,
  type Started,
} from '../helpers/service-process';

const TOKEN = 'cluster-metrics-token-0123456789';
const WORKERS = 2;
/** The default KMS_PKCS11_SESSIONS, per worker. */
const SESSIONS = 8;

/** GET on a connection of its own, so that the cluster's round robin spreads scrapes over the workers. */
function getAlone(url: string, token?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
    const outgoing = request(url, { method: 'GET', agent: false, headers }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

async function scrape(url: string, token?: string): Promise<Metrics> {
  const response = await getAlone(url, token);
  expect({ status: response.status, start: response.text.slice(0, 6) }).toEqual({ status: 200, start: '# HELP' });
  return Metrics.parse(response.text);
}

/** One create-key, then `n` create-datakey under it, each on a connection of its own; both workers serve some. */
async function knownSequence(started: Started, admin: AdminCredentials, n: number): Promise<void> {
  const created = await postAlone(started.url, admin, 'create-key', { key_alias: 'cluster-metrics' });
  expect(created.status).toBe(200);
  const keyId = created.body.key_info!.key_id;
  const dataKeys = await Promise.all(Array.from({ length: n }, () => postAlone(started.url, admin, 'create-datakey', { key_id: keyId })));
  expect(dataKeys.map((reply) => reply.status)).toEqual(Array(n).fill(200));
  // Access-log lines travel over a pipe, after the responses: wait for both workers'.
  const served = await eventually('access-log lines of both workers', () => workersThatServed(started), { until: (workers) => workers.size >= 2 });
  expect(served).toEqual(new Set([0, 1]));
}

/** The totals of the known sequence, as one scrape of the whole cluster must give them. */
function expectTotals(metrics: Metrics, n: number): void {
  expect({
    datakeys: metrics.value('kms_http_requests_total', { operation: 'create-datakey', status: '200' }),
    datakeyLatencies: metrics.value('kms_http_request_duration_seconds_count', { operation: 'create-datakey' }),
    keys: metrics.value('kms_http_requests_total', { operation: 'create-key', status: '200' }),
    encryptions: metrics.value('kms_hsm_call_duration_seconds_count', { function: 'encrypt' }),
    seals: metrics.value('kms_seals_total'),
    // Summed: each worker has its own pool.
    sessions: metrics.value('kms_hsm_session_pool_size'),
    // Read from the one database by every worker: counted once, not once per worker.
    enabledKeys: metrics.value('kms_keys', { state: 'enabled' }),
    budget: metrics.value('kms_seal_budget'),
  }).toEqual({ datakeys: n, datakeyLatencies: n, keys: 1, encryptions: n, seals: n, sessions: WORKERS * SESSIONS, enabledKeys: 1, budget: 2 ** 30 });
}

describe('the metrics of a cluster of two workers', () => {
  const dirs: string[] = [];
  const running: Started[] = [];
  let tokenFile: string;
  beforeAll(() => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kms-metrics-token-'));
    dirs.push(dir);
    tokenFile = path.join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  });
  afterAll(() => {
    for (const started of running) if (started.child.exitCode === null) started.child.kill('SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const start = async (env: NodeJS.ProcessEnv): Promise<{ started: Started; admin: AdminCredentials }> => {
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const started = await startProcess(dataDir, { KMS_WORKERS: String(WORKERS), ...env });
    running.push(started);
    return { started, admin: readAdminCredentials(dataDir) };
  };
  const stop = (started: Started): Promise<number | null> => {
    const exited = exitOf(started.child);
    started.child.kill('SIGTERM');
    return exited;
  };

  it('on the API port: a scrape through either worker gives both workers\' totals', async () => {
    const { started, admin } = await start({ KMS_METRICS_TOKEN_FILE: tokenFile });
    const N = 8;
    await knownSequence(started, admin, N);
    // Several scrapes, each on a new connection: the workers take turns answering, each with the cluster's totals.
    for (let i = 0; i < 4; i++) expectTotals(await scrape(`${started.url}/metrics`, TOKEN), N);
    expect((await getAlone(`${started.url}/metrics`)).status).toBe(401);
    expect(await stop(started)).toBe(0);
  }, 120_000);

  it("on the primary's own listener (KMS_METRICS_PORT), without a token", async () => {
    const { started, admin } = await start({ KMS_METRICS_PORT: '0' });
    const metricsUrl = /"metricsUrl":"(http:[^"]+)"/.exec(started.output())?.[1];
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const N = 6;
    await knownSequence(started, admin, N);
    expectTotals(await scrape(metricsUrl!), N);
    expect(await stop(started)).toBe(0);
    expect(started.output()).toContain('"msg":"KMS stopped"');
  }, 120_000);
});

describe('a metrics port in use', () => {
  it.each(['1', '2'])('stops the start in one line (KMS_WORKERS=%s)', async (workers) => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    const dataDir = makeDataDir();
    try {
      const port = (taken.address() as AddressInfo).port;
      const { code, output } = await runUntilExit(processEnv(dataDir, { KMS_METRICS_PORT: String(port), KMS_WORKERS: workers, KMS_LOG_LEVEL: 'info' }));
      expect(code).toBe(1);
      expect(output.split('\n').filter((line) => line.startsWith('kms: '))).toEqual([`kms: cannot listen for metrics on 127.0.0.1:${port}: EADDRINUSE`]);
      expect(output).not.toMatch(/^\s+at /m);
      expect(output).not.toContain('KMS listening');
    } finally {
      taken.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
