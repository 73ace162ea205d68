/**
 * `npm run bench -- --profile [--duration S] [--connections N]`: a CPU profile of the service as
 * users run it (dist/main.js, its defaults: the cluster, the audit log, the access log to a file),
 * under signed create-datakey load (32 connections, 10 s unless told), and the table of where each
 * request's CPU goes (profile-table.ts). Every process of the service runs with `node --cpu-prof`
 * (the workers inherit it); their profiles are written when the service stops, into
 * bench/results/profile-<time>/; the workers' samples within the load's time are summed, and each
 * part's share of them applied to the service's CPU time per request (/proc). V8's one line per
 * garbage collection (--trace-gc-nvp, in the service's log file) gives the bytes allocated per
 * request and the collections per 1,000 requests. Open a .cpuprofile in Chrome's DevTools (Performance) or
 * speedscope for the call tree.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call } from './kms-calls';
import { load } from './load';
import { busyMicros, PARTS, partsOf, type CpuProfile, type Part } from './profile-table';
import { ROOT, startService, treeCpuSeconds, type Server } from './processes';

/** The monotonic clock V8's profiles use, in µs (CLOCK_MONOTONIC, as process.hrtime). */
function monotonicMicros(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * The garbage collections V8 reported (--trace-gc-nvp) between two offsets of the log file: their
 * number by kind, and the bytes allocated before each, summed. The lines go through C's stdio
 * buffer: a few may land after the load ended, or belong to just before it.
 */
function collections(logFile: string, from: number, to: number): { allocatedBytes: number; scavenges: number; markCompacts: number } {
  const fd = openSync(logFile, 'r');
  const bytes = Buffer.alloc(Math.max(0, to - from));
  try {
    readSync(fd, bytes, 0, bytes.length, from);
  } finally {
    closeSync(fd);
  }
  let allocatedBytes = 0;
  let scavenges = 0;
  let markCompacts = 0;
  for (const line of bytes.toString('utf8').split('\n')) {
    const kind = / gc=(\w+)\b/.exec(line)?.[1];
    const allocated = / allocated=(\d+)\b/.exec(line)?.[1];
    if (kind === undefined || allocated === undefined) continue;
    allocatedBytes += Number(allocated);
    // s: a scavenge of the young generation; mc: a full mark-compact.
    if (kind === 's') scavenges++;
    else if (kind === 'mc' || kind === 'ms') markCompacts++;
  }
  return { allocatedBytes, scavenges, markCompacts };
}

export interface ProfileOptions {
  readonly durationSeconds: number;
  readonly connections: number;
  readonly outDir?: string;
}

export async function profileRun(report: Record<string, unknown>, options: ProfileOptions): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kms-bench-profile-'));
  const outDir = options.outDir ?? path.join(ROOT, 'bench', 'results', `profile-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(outDir, { recursive: true });
  let service: Server | undefined;
  try {
    // --trace-gc-nvp: a line per garbage collection on stdout (the log file), with the bytes allocated since the one before.
    const started = await startService('service', path.join(ROOT, 'dist', 'main.js'), dataDir, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${outDir}`, '--trace-gc-nvp'] });
    service = started.server;
    const { credential } = started;
    const keyId = ((await call(service.url, credential, 'create-key', { key_alias: 'profile' })) as { key_info: { key_id: string } }).key_info.key_id;
    const pathname = `/v1.0/${credential.projectId}/kms/create-datakey`;
    const body = JSON.stringify({ key_id: keyId });
    // Warm-up: V8 optimises the hot path before the window that counts.
    await load({ url: service.url, path: pathname, body, connections: options.connections, durationSeconds: 2, credential });
    const cpuBefore = treeCpuSeconds(service.child.pid!);
    const logFrom = statSync(started.logFile).size;
    const from = monotonicMicros();
    const result = await load({ url: service.url, path: pathname, body, connections: options.connections, durationSeconds: options.durationSeconds, credential });
    const to = monotonicMicros();
    const gc = collections(started.logFile, logFrom, statSync(started.logFile).size);
    const cpuUs = ((treeCpuSeconds(service.child.pid!) - cpuBefore) * 1e6) / Math.max(1, result.requests);
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`profile: ${result.non2xx} non-2xx, ${result.errors} errors`);
    const primaryPid = service.child.pid!;
    await service.stop();
    service = undefined;

    // One profile per process; the primary only supervises (its file is named by its pid).
    const files = readdirSync(outDir).filter((name) => name.endsWith('.cpuprofile'));
    const workers = files.filter((name) => !name.includes(`.${primaryPid}.`));
    const totals = new Map<Part, number>(PARTS.map((part) => [part, 0]));
    for (const file of workers) {
      const profile = JSON.parse(readFileSync(path.join(outDir, file), 'utf8')) as CpuProfile;
      for (const [part, micros] of partsOf(profile, { from, to })) totals.set(part, totals.get(part)! + micros);
    }
    const busy = busyMicros(totals);
    // The samples' shares, applied to the CPU time /proc counted (samples are wall time, see profile-table.ts).
    const perRequest = (micros: number): number => Math.round((busy > 0 ? (micros / busy) * cpuUs : 0) * 10) / 10;
    const sampledUs = Math.round(busy / Math.max(1, result.requests));
    console.log(
      `\nprofile: create-datakey at ${options.connections} connections for ${options.durationSeconds} s, ${result.requests} requests, ` +
        `${result.requestsPerSecond} req/s, p99 ${result.p99Ms} ms; ${os.cpus()[0]?.model ?? 'unknown CPU'} x ${os.cpus().length}, load average ${os.loadavg()[0]!.toFixed(1)}`,
    );
    console.log(`CPU per request: ${Math.round(cpuUs)} µs (/proc, all of the service's processes); the workers' samples, wall time: ${sampledUs} µs`);
    console.log('| where | CPU µs per request | share of samples |\n|---|---|---|');
    const rows = PARTS.map((part) => ({ part, usPerRequest: perRequest(totals.get(part)!), share: busy > 0 ? totals.get(part)! / busy : 0 }));
    for (const row of rows) console.log(`| ${row.part} | ${row.usPerRequest} | ${(row.share * 100).toFixed(1)}% |`);
    const perThousand = (count: number): number => Math.round((count / Math.max(1, result.requests)) * 1000 * 100) / 100;
    const allocatedKb = Math.round(gc.allocatedBytes / Math.max(1, result.requests) / 102.4) / 10;
    console.log(
      `garbage collection (V8's --trace-gc-nvp, the workers' lines written during the load): ${allocatedKb} KB allocated per request, ` +
        `${perThousand(gc.scavenges)} scavenges and ${perThousand(gc.markCompacts)} mark-compacts per 1,000 requests (${gc.scavenges} and ${gc.markCompacts})`,
    );
    console.log(`profiles (one per process of the service): ${path.relative(process.cwd(), outDir)}`);
    report.profile = {
      endpoint: 'create-datakey',
      connections: options.connections,
      durationSeconds: options.durationSeconds,
      requests: result.requests,
      requestsPerSecond: result.requestsPerSecond,
      p99Ms: result.p99Ms,
      sampledUsPerRequest: sampledUs,
      allocatedKbPerRequest: allocatedKb,
      scavenges: gc.scavenges,
      markCompacts: gc.markCompacts,
      procCpuUsPerRequest: Math.round(cpuUs),
      rows,
      profiles: outDir,
    };
  } finally {
    await service?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
