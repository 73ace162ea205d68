/**
 * Issue 19's rows: sign RSA-2048 PSS (RSASSA_PSS_SHA_256), sign ECDSA P-256 (ECDSA_SHA_256), verify
 * (ECDSA_SHA_256 on P-256: the verification of the two that costs the HSM more) and generate-mac
 * (HMAC_256) at the peak connections, each on the service (every request signed as the SDKs sign)
 * against its ceiling (bench/ceiling-signing-server.ts: the same PKCS#11 work over bare node:http)
 * on the service's token, in alternating rounds of the same run, with the CPU each server's
 * processes spend per request (from /proc, which others' load on the machine does not inflate as
 * it does the rates). Messages are SHA-256 digests (message_type DIGEST, the API's default); the
 * MAC's message is 256 bytes. The service's describe-key of the same key is measured in the same
 * rounds beside them: what any request costs the service without an HSM call (authentication,
 * validation, key lookup, audit, reply), the part of each row that no ceiling has.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call } from './kms-calls';
import { load, type Credential } from './load';
import { ROOT, startServer, startService, treeCpuSeconds, type Server } from './processes';

export interface SigningRowsOptions {
  readonly durationSeconds: number;
  readonly connections: number;
  /** Rounds of each operation, service and ceiling taking turns to go first. */
  readonly rounds: number;
}

const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';
const TSX = require.resolve('tsx/cli');

interface Operation {
  /** The row's name. */
  readonly name: string;
  /** The API operation (the path's last segment). */
  readonly endpoint: string;
  readonly body: string;
}

interface Measured {
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  readonly cpuUsPerRequest: number;
}

const round1 = (value: number): number => Math.round(value * 10) / 10;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function createKey(service: Server, credential: Credential, alias: string, spec: string): Promise<string> {
  const created = (await call(service.url, credential, 'create-key', { key_alias: alias, key_spec: spec })) as { key_info: { key_id: string } };
  return created.key_info.key_id;
}

/** Fails unless `actual` is `expected`: the ceiling must do the service's work, not less. */
function expectSame(what: string, actual: unknown, expected: unknown): void {
  if (actual !== expected) throw new Error(`ceiling ${what}: ${String(actual)}, where the service says ${String(expected)}: the two do not do the same work`);
}

/**
 * The ceiling's answers checked against the service's before anything is measured: its signatures
 * verify in the service, its verification tells a valid signature from another digest's, and its
 * MAC is the service's.
 */
async function checkCeiling(ceiling: Server, service: Server, credential: Credential, keys: { rsa: string; ec: string; hmac: string }, digest: string, macMessage: string): Promise<void> {
  for (const [algorithm, keyId] of [['RSASSA_PSS_SHA_256', keys.rsa], ['ECDSA_SHA_256', keys.ec]] as const) {
    const signed = (await call(ceiling.url, credential, 'sign', { key_id: keyId, message: digest, signing_algorithm: algorithm })) as { signature: string };
    const checked = await call(service.url, credential, 'verify', { key_id: keyId, message: digest, signature: signed.signature, signing_algorithm: algorithm });
    expectSame(`${algorithm} signature, verified by the service`, checked.signature_valid, 'true');
  }
  const otherDigest = createHash('sha256').update('another message').digest('base64');
  for (const message of [digest, otherDigest]) {
    const signed = (await call(service.url, credential, 'sign', { key_id: keys.ec, message, signing_algorithm: 'ECDSA_SHA_256' })) as { signature: string };
    const verified = await call(ceiling.url, credential, 'verify', { key_id: keys.ec, message: digest, signature: signed.signature, signing_algorithm: 'ECDSA_SHA_256' });
    expectSame('verify', verified.signature_valid, message === digest ? 'true' : 'false');
  }
  const body = { key_id: keys.hmac, mac_algorithm: 'HMAC_SHA_256', message: macMessage };
  expectSame('generate-mac', (await call(ceiling.url, credential, 'generate-mac', body)).mac, (await call(service.url, credential, 'generate-mac', body)).mac);
}

/**
 * The rows on `service` (its admin `credential`; its embedded token in `softhsmDir`): three keys
 * made through the API, the ceiling started on the same token, its answers checked, then the
 * rounds. Adds `report.signing`.
 */
export async function signingRows(service: Server, credential: Credential, softhsmDir: string, report: Record<string, unknown>, options: SigningRowsOptions): Promise<void> {
  const keys = {
    rsa: await createKey(service, credential, 'bench-rsa', 'RSA_2048'),
    ec: await createKey(service, credential, 'bench-ec', 'EC_P256'),
    hmac: await createKey(service, credential, 'bench-hmac', 'HMAC_256'),
  };
  const digest = createHash('sha256').update('issue 19 bench message').digest('base64');
  const macMessage = randomBytes(256).toString('base64');
  const ecSigned = (await call(service.url, credential, 'sign', { key_id: keys.ec, message: digest, signing_algorithm: 'ECDSA_SHA_256' })) as { signature: string };
  const operations: Operation[] = [
    { name: 'sign RSA_2048 PSS', endpoint: 'sign', body: JSON.stringify({ key_id: keys.rsa, message: digest, signing_algorithm: 'RSASSA_PSS_SHA_256' }) },
    { name: 'sign EC_P256 ECDSA', endpoint: 'sign', body: JSON.stringify({ key_id: keys.ec, message: digest, signing_algorithm: 'ECDSA_SHA_256' }) },
    {
      name: 'verify EC_P256 ECDSA',
      endpoint: 'verify',
      body: JSON.stringify({ key_id: keys.ec, message: digest, signature: ecSigned.signature, signing_algorithm: 'ECDSA_SHA_256' }),
    },
    { name: 'generate-mac HMAC_256', endpoint: 'generate-mac', body: JSON.stringify({ key_id: keys.hmac, mac_algorithm: 'HMAC_SHA_256', message: macMessage }) },
  ];
  const ceiling = await startServer('ceiling-signing', [TSX, path.join(ROOT, 'bench', 'ceiling-signing-server.ts')], {
    SOFTHSM2_CONF: path.join(softhsmDir, 'softhsm2.conf'),
    BENCH_MODULE: SOFTHSM,
    BENCH_TOKEN_LABEL: 'kms',
    BENCH_PIN_FILE: path.join(softhsmDir, 'user.pin'),
    BENCH_RSA_LABEL: `kms/${keys.rsa}/v0`,
    BENCH_EC_LABEL: `kms/${keys.ec}/v0`,
    BENCH_HMAC_LABEL: `kms/${keys.hmac}/v0`,
  });
  try {
    await checkCeiling(ceiling, service, credential, keys, digest, macMessage);
    const legs = [
      { side: 'service', server: service, credential },
      { side: 'ceiling', server: ceiling },
    ] as const;
    const pathname = (endpoint: string): string => `/v1.0/${credential.projectId}/kms/${endpoint}`;
    const run = async (leg: (typeof legs)[number], operation: Operation, seconds: number): Promise<Measured> => {
      const pid = leg.server.child.pid!;
      const before = treeCpuSeconds(pid);
      const result = await load({
        url: leg.server.url,
        path: pathname(operation.endpoint),
        body: operation.body,
        connections: options.connections,
        durationSeconds: seconds,
        ...('credential' in leg ? { credential: leg.credential } : {}),
      });
      if (result.non2xx > 0 || result.errors > 0) throw new Error(`${leg.side} ${operation.name}: ${result.non2xx} non-2xx responses and ${result.errors} errors`);
      return { requestsPerSecond: result.requestsPerSecond, p99Ms: result.p99Ms, cpuUsPerRequest: round1(((treeCpuSeconds(pid) - before) / result.requests) * 1e6) };
    };
    const describe: Operation = { name: 'describe-key', endpoint: 'describe-key', body: JSON.stringify({ key_id: keys.ec }) };
    // A second of each first, unrecorded: every code path warm.
    for (const operation of operations) for (const leg of legs) await run(leg, operation, 1);
    await run(legs[0], describe, 1);
    const described: Measured[] = [];
    const measured = new Map(operations.map((operation) => [operation.name, { service: [] as Measured[], ceiling: [] as Measured[] }]));
    for (let round = 0; round < options.rounds; round++) {
      for (const operation of operations) {
        const order = round % 2 === 0 ? legs : [...legs].reverse();
        for (const leg of order) measured.get(operation.name)![leg.side].push(await run(leg, operation, options.durationSeconds));
      }
      described.push(await run(legs[0], describe, options.durationSeconds));
    }
    const loadAverage = round1(os.loadavg()[0]!);
    const rows = operations.map(({ name }) => {
      const own = measured.get(name)!;
      const sum = (list: Measured[]): number => list.reduce((total, entry) => total + entry.requestsPerSecond, 0);
      const summary = (list: Measured[]) => ({
        requestsPerSecond: Math.round(median(list.map((entry) => entry.requestsPerSecond))),
        p99Ms: Math.max(...list.map((entry) => entry.p99Ms)),
        cpuUsPerRequest: round1(median(list.map((entry) => entry.cpuUsPerRequest))),
        rounds: list.map((entry) => entry.requestsPerSecond),
      });
      return { operation: name, service: summary(own.service), ceiling: summary(own.ceiling), serviceOverCeiling: Math.round((sum(own.service) / sum(own.ceiling)) * 100) / 100 };
    });
    console.log(
      `\nissue 19 operations at ${options.connections} connections, ${options.rounds} alternating rounds, load average ${loadAverage} (median req/s, worst p99, median CPU µs per request of the server's processes):`,
    );
    const header = ['operation', 'service req/s', 'ceiling req/s', 'service/ceiling', 'p99 ms s/c', 'CPU µs/req s/c'];
    const lines = rows.map((row) => [
      row.operation,
      String(row.service.requestsPerSecond),
      String(row.ceiling.requestsPerSecond),
      String(row.serviceOverCeiling),
      `${row.service.p99Ms}/${row.ceiling.p99Ms}`,
      `${row.service.cpuUsPerRequest}/${row.ceiling.cpuUsPerRequest}`,
    ]);
    const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i]!.length)));
    const format = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
    console.log(`  ${format(header)}`);
    for (const line of lines) console.log(`  ${format(line)}`);
    const describeKey = {
      requestsPerSecond: Math.round(median(described.map((entry) => entry.requestsPerSecond))),
      cpuUsPerRequest: round1(median(described.map((entry) => entry.cpuUsPerRequest))),
      rounds: described.map((entry) => entry.requestsPerSecond),
    };
    console.log(`  service describe-key (no HSM call) in the same rounds: ${describeKey.requestsPerSecond} req/s, ${describeKey.cpuUsPerRequest} µs CPU per request`);
    report.signing = { connections: options.connections, rounds: options.rounds, durationSeconds: options.durationSeconds, loadAverage, rows, serviceDescribeKey: describeKey };
  } finally {
    await ceiling.stop();
  }
}

/** The rows alone (--only-extra --signing): a service of their own on a fresh token, as users start it. */
export async function signingRowsRun(report: Record<string, unknown>, options: SigningRowsOptions & { readonly workers?: string }): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kms-bench-signing-'));
  const { server, credential } = await startService('service', path.join(ROOT, 'dist', 'main.js'), dataDir, { env: options.workers ? { KMS_WORKERS: options.workers } : {} });
  try {
    await signingRows(server, credential, path.join(dataDir, 'softhsm'), report, options);
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
