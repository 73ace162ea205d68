/**
 * The store figures of issue 18 (`npm run bench -- --only-extra --stores`), in one run, every
 * service `node dist/main.js` with KMS_WORKERS=1 (one process each, so that one instance against
 * two compares processes, not clusters), signed as the SDKs sign:
 * - create-datakey and decrypt-datakey at 32 connections on PostgreSQL against SQLite: the hot path
 *   is served from the key cache, so they should be within 10% of each other;
 * - create-key per second on each store;
 * - the change feed's visibility delay across two instances on one PostgreSQL and one SoftHSM
 *   token: disable through A, poll create-datakey on B until it is refused (KMS.0209), enable again
 *   and wait until B serves it before the next sample; the poll's round trip is the resolution;
 * - create-datakey with one instance against two on that one PostgreSQL, the load split across them.
 * PostgreSQL is a throwaway cluster (test/helpers/postgres-cluster.ts: fsync off), SQLite a fresh
 * data directory.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startPostgresCluster, type PostgresCluster } from '../test/helpers/postgres-cluster';
import { load, signedHeaders, type Credential, type LoadResult } from './load';
import { ROOT, startServer, type Server } from './processes';

export interface StoresOptions {
  readonly durationSeconds: number;
  /** Rounds of each throughput measure, alternating the stores; the median is reported. */
  readonly rounds: number;
  readonly smoke: boolean;
}

const CONNECTIONS = 32;

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** POSTs one signed request and returns its status and body, whatever the status. */
function post(url: string, credential: Credential, operation: string, body: unknown): Promise<Answer> {
  const pathname = `/v1.0/${credential.projectId}/kms/${operation}`;
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const outgoing = request(`${url}${pathname}`, { method: 'POST', headers: signedHeaders(url, credential, pathname, text) }, (response) => {
      let data = '';
      response.on('data', (chunk: Buffer) => (data += chunk.toString()));
      response.on('end', () => {
        try {
          resolve({ status: response.statusCode ?? 0, body: JSON.parse(data) as Record<string, unknown> });
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    outgoing.on('error', reject);
    outgoing.end(text);
  });
}

async function ok(url: string, credential: Credential, operation: string, body: unknown): Promise<Record<string, unknown>> {
  const answer = await post(url, credential, operation, body);
  if (answer.status !== 200) throw new Error(`${operation}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

function startKms(name: string, dataDir: string, env: NodeJS.ProcessEnv): Promise<Server> {
  return startServer(name, [path.join(ROOT, 'dist', 'main.js')], {
    KMS_DATA_DIR: dataDir,
    PORT: '0',
    KMS_LOG_LEVEL: 'info',
    // As bench/run.ts: the access log through a pipe would measure the pipe.
    KMS_ACCESS_LOG: 'off',
    SOFTHSM2_CONF: '',
    KMS_WORKERS: '1',
    ...env,
  });
}

function adminCredential(dataDir: string): Credential {
  const admin = JSON.parse(readFileSync(path.join(dataDir, 'admin-credentials.json'), 'utf8')) as Record<string, string>;
  return { projectId: admin.project_id!, accessKey: admin.access_key!, secretKey: admin.secret_key! };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const round1 = (value: number): number => Math.round(value * 10) / 10;

interface Target {
  readonly store: 'sqlite' | 'postgres';
  readonly url: string;
  readonly credential: Credential;
  readonly keyId: string;
  /** A data key sealed under keyId, for decrypt-datakey. */
  readonly cipherText: string;
}

async function target(store: Target['store'], url: string, credential: Credential): Promise<Target> {
  const created = (await ok(url, credential, 'create-key', { key_alias: `bench-stores-${store}` })) as { key_info: { key_id: string } };
  const keyId = created.key_info.key_id;
  const sealed = (await ok(url, credential, 'create-datakey', { key_id: keyId })) as { cipher_text: string };
  return { store, url, credential, keyId, cipherText: sealed.cipher_text };
}

function bodyOf(endpoint: 'create-datakey' | 'decrypt-datakey', on: Target): string {
  return endpoint === 'create-datakey'
    ? JSON.stringify({ key_id: on.keyId })
    : JSON.stringify({ key_id: on.keyId, cipher_text: on.cipherText, datakey_cipher_length: '32' });
}

async function loadOn(on: Target, endpoint: 'create-datakey' | 'decrypt-datakey', connections: number, durationSeconds: number): Promise<LoadResult> {
  const result = await load({
    url: on.url,
    path: `/v1.0/${on.credential.projectId}/kms/${endpoint}`,
    body: bodyOf(endpoint, on),
    connections,
    durationSeconds,
    credential: on.credential,
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${on.store} ${endpoint}: ${result.non2xx} non-2xx responses and ${result.errors} errors`);
  return result;
}

interface ThroughputRow {
  readonly endpoint: string;
  readonly sqlite: { readonly requestsPerSecond: number; readonly p99Ms: number };
  readonly postgres: { readonly requestsPerSecond: number; readonly p99Ms: number };
  /** PostgreSQL's req/s over SQLite's. */
  readonly ratio: number;
}

/** create-datakey and decrypt-datakey on each store, the stores alternating round by round; medians. */
async function hotPath(sqlite: Target, postgres: Target, options: StoresOptions): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const endpoint of ['create-datakey', 'decrypt-datakey'] as const) {
    const results: Record<Target['store'], LoadResult[]> = { sqlite: [], postgres: [] };
    for (let round = 0; round < options.rounds; round++) {
      // Alternating which store goes first: the machine's other load drifts over a run.
      const order = round % 2 === 0 ? [sqlite, postgres] : [postgres, sqlite];
      for (const on of order) results[on.store].push(await loadOn(on, endpoint, CONNECTIONS, options.durationSeconds));
    }
    const summary = (of: LoadResult[]) => ({ requestsPerSecond: median(of.map((r) => r.requestsPerSecond)), p99Ms: median(of.map((r) => r.p99Ms)) });
    const s = summary(results.sqlite);
    const p = summary(results.postgres);
    rows.push({ endpoint, sqlite: s, postgres: p, ratio: Math.round((p.requestsPerSecond / s.requestsPerSecond) * 100) / 100 });
  }
  return rows;
}

/** Keys created per second through the API, 16 at a time. */
async function createKeyRate(on: Target, count: number): Promise<number> {
  const began = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      await ok(on.url, on.credential, 'create-key', { key_alias: `bench-rate-${on.store}-${index}` });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return round1(count / ((performance.now() - began) / 1000));
}

interface Visibility {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** The mean round trip of one poll of B: the measure's resolution. */
  readonly pollIntervalMs: number;
}

const served = (answer: Answer): boolean => answer.status === 200;
const refusedAsDisabled = (answer: Answer): boolean => answer.status === 400 && answer.body.error_code === 'KMS.0209';

/** Polls `what` back to back until `done` holds of an answer, while `before` holds of the others; fails after `limitMs`. */
async function pollUntil(
  what: string,
  poll: () => Promise<Answer>,
  done: (answer: Answer) => boolean,
  before: (answer: Answer) => boolean,
  limitMs = 5000,
): Promise<{ atMs: number; polls: number }> {
  const start = performance.now();
  for (let polls = 1; ; polls++) {
    const answer = await poll();
    const atMs = performance.now();
    if (done(answer)) return { atMs, polls };
    if (!before(answer)) throw new Error(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
    if (atMs - start > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
  }
}

/**
 * The delay from A's answer to a disable until B refuses the key: each sample disables through A,
 * polls create-datakey on B back to back until it is refused KMS.0209, then enables through A and
 * waits until B serves the key again.
 */
async function visibility(a: Target, bUrl: string, samples: number): Promise<Visibility> {
  const delays: number[] = [];
  let polls = 0;
  let pollingMs = 0;
  const onB = (): Promise<Answer> => post(bUrl, a.credential, 'create-datakey', { key_id: a.keyId });
  await pollUntil('B to serve the key', onB, served, refusedAsDisabled);
  for (let i = 0; i < samples; i++) {
    await ok(a.url, a.credential, 'disable-key', { key_id: a.keyId });
    const acknowledged = performance.now();
    const refused = await pollUntil('B to refuse the disabled key', onB, refusedAsDisabled, served);
    delays.push(refused.atMs - acknowledged);
    polls += refused.polls;
    pollingMs += refused.atMs - acknowledged;
    await ok(a.url, a.credential, 'enable-key', { key_id: a.keyId });
    await pollUntil('B to serve the enabled key', onB, served, refusedAsDisabled);
  }
  return {
    samples,
    p50Ms: round1(percentile(delays, 50)),
    p99Ms: round1(percentile(delays, 99)),
    maxMs: round1(Math.max(...delays)),
    pollIntervalMs: round1(pollingMs / polls),
  };
}

interface Instances {
  readonly one: { readonly requestsPerSecond: number; readonly p99Ms: number };
  /** The two instances' req/s summed, and the worse p99. */
  readonly two: { readonly requestsPerSecond: number; readonly p99Ms: number };
}

/** create-datakey at 32 connections on A alone, then 16 on A and 16 on B at once; medians of rounds. */
async function oneAgainstTwo(a: Target, bUrl: string, options: StoresOptions): Promise<Instances> {
  const one: LoadResult[] = [];
  const two: Array<{ requestsPerSecond: number; p99Ms: number }> = [];
  const b: Target = { ...a, url: bUrl };
  for (let round = 0; round < options.rounds; round++) {
    one.push(await loadOn(a, 'create-datakey', CONNECTIONS, options.durationSeconds));
    const [onA, onB] = await Promise.all([
      loadOn(a, 'create-datakey', CONNECTIONS / 2, options.durationSeconds),
      loadOn(b, 'create-datakey', CONNECTIONS / 2, options.durationSeconds),
    ]);
    two.push({ requestsPerSecond: onA.requestsPerSecond + onB.requestsPerSecond, p99Ms: Math.max(onA.p99Ms, onB.p99Ms) });
  }
  return {
    one: { requestsPerSecond: median(one.map((r) => r.requestsPerSecond)), p99Ms: median(one.map((r) => r.p99Ms)) },
    two: { requestsPerSecond: median(two.map((r) => r.requestsPerSecond)), p99Ms: median(two.map((r) => r.p99Ms)) },
  };
}

function printRows(title: string, header: string[], lines: string[][]): void {
  const widths = header.map((name, i) => Math.max(name.length, ...lines.map((line) => line[i]!.length)));
  const format = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  console.log(`\n${title}`);
  console.log(format(header));
  for (const line of lines) console.log(format(line));
}

export async function storesRun(report: Record<string, unknown>, options: StoresOptions): Promise<void> {
  const dirs: string[] = [];
  const servers: Server[] = [];
  const tempDir = (prefix: string): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  let cluster: PostgresCluster | undefined;
  // The machine is shared: its load, beside the figures.
  const loadAverageBefore = round1(os.loadavg()[0]!);
  try {
    cluster = await startPostgresCluster();
    const databaseUrl = await cluster.freshDatabase();
    const sqliteDir = tempDir('kms-bench-sqlite-');
    const aDir = tempDir('kms-bench-pg-a-');
    const bDir = tempDir('kms-bench-pg-b-');
    // One token for both instances, as one HSM partition (KMS_SOFTHSM_DIR), and one database.
    const tokenDir = tempDir('kms-bench-token-');
    const shared = { KMS_DATABASE_URL: databaseUrl, KMS_SOFTHSM_DIR: tokenDir };
    const sqliteServer = await startKms('sqlite', sqliteDir, {});
    servers.push(sqliteServer);
    const aServer = await startKms('postgres-a', aDir, { ...shared, KMS_INSTANCE_ID: 'bench-a' });
    servers.push(aServer);
    const bServer = await startKms('postgres-b', bDir, { ...shared, KMS_INSTANCE_ID: 'bench-b' });
    servers.push(bServer);
    // B's credentials are A's: they live in the shared database.
    const sqlite = await target('sqlite', sqliteServer.url, adminCredential(sqliteDir));
    const a = await target('postgres', aServer.url, adminCredential(aDir));

    const hot = await hotPath(sqlite, a, options);
    printRows(
      `Hot path at ${CONNECTIONS} connections (KMS_WORKERS=1, medians of ${options.rounds} rounds of ${options.durationSeconds} s)`,
      ['endpoint', 'SQLite req/s', 'SQLite p99 ms', 'PostgreSQL req/s', 'PostgreSQL p99 ms', 'PG/SQLite'],
      hot.map((row) => [row.endpoint, String(row.sqlite.requestsPerSecond), String(row.sqlite.p99Ms), String(row.postgres.requestsPerSecond), String(row.postgres.p99Ms), String(row.ratio)]),
    );

    const keyCount = options.smoke ? 20 : 200;
    const createKey = { keys: keyCount, sqlite: await createKeyRate(sqlite, keyCount), postgres: await createKeyRate(a, keyCount) };
    printRows(`create-key, ${keyCount} keys 16 at a time`, ['store', 'keys/s'], [
      ['SQLite', String(createKey.sqlite)],
      ['PostgreSQL', String(createKey.postgres)],
    ]);

    const seen = await visibility(a, bServer.url, options.smoke ? 10 : 100);
    printRows('Change feed: disable through A, refused by B', ['samples', 'p50 ms', 'p99 ms', 'max ms', 'poll interval ms'], [
      [String(seen.samples), String(seen.p50Ms), String(seen.p99Ms), String(seen.maxMs), String(seen.pollIntervalMs)],
    ]);

    const instances = await oneAgainstTwo(a, bServer.url, options);
    printRows(`create-datakey at ${CONNECTIONS} connections on one PostgreSQL`, ['instances', 'req/s', 'p99 ms'], [
      ['1', String(instances.one.requestsPerSecond), String(instances.one.p99Ms)],
      ['2', String(instances.two.requestsPerSecond), String(instances.two.p99Ms)],
    ]);

    const loadAverage = { before: loadAverageBefore, after: round1(os.loadavg()[0]!) };
    console.log(`\nload average (1 min) before ${loadAverage.before}, after ${loadAverage.after}`);
    report.stores = { loadAverage, workers: 1, connections: CONNECTIONS, rounds: options.rounds, durationSeconds: options.durationSeconds, hotPath: hot, createKey, visibility: seen, instances };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    cluster?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}
