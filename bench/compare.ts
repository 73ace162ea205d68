/**
 * Builds of the service against each other and the ceiling, in one run (issue 21):
 *
 *   npx tsx bench/compare.ts --builds before=bench/results/builds/v0,after=. [--rounds 5]
 *                            [--duration 4] [--connections 1,32] [--endpoints create-datakey,decrypt-datakey]
 *
 * Each build is a directory holding a `dist/` (built by `npm run build`, copied aside); a build
 * may carry a `node_modules/` of its own beside it (an unpatched package, say), which Node finds
 * before the worktree's. Every service runs with its defaults as users start it: the cluster
 * (KMS_WORKERS=auto), the audit log, SDK-style signing, and the access log ON, its lines going
 * to a file (stdout redirected), as in production: not to this process through a pipe.
 *
 * The servers all run at once, idle but for the one being loaded; each round loads every
 * (connections, endpoint) on every server, in an order that rotates from round to round, and the
 * figures are medians over the rounds (the machine is shared: compare within one run only).
 * service/ceiling is taken per round and its median printed. The ceiling answers create-datakey
 * only (bench/ceiling-server.ts); decrypt-datakey is held against that same ceiling.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { call, workloadBodies } from './kms-calls';
import { load, WARM_UP_SECONDS, type Credential, type LoadResult } from './load';
import { ROOT, startServer, startService, treeCpuSeconds, type Server } from './processes';

const { values: args } = parseArgs({
  options: {
    builds: { type: 'string' },
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '4' },
    connections: { type: 'string', default: '1,32' },
    endpoints: { type: 'string', default: 'create-datakey,decrypt-datakey' },
    out: { type: 'string' },
  },
});

const builds = (args.builds ?? 'current=.').split(',').map((entry) => {
  const [name, dir] = entry.split('=');
  if (!name || !dir) throw new Error(`--builds: expected name=dir, got ${entry}`);
  return { name, dir: path.resolve(ROOT, dir) };
});
const rounds = Number(args.rounds);
const durationSeconds = Number(args.duration);
const connectionCounts = (args.connections ?? '1,32').split(',').map(Number);
const endpoints = (args.endpoints ?? '').split(',');
const TSX = require.resolve('tsx/cli');
const SOFTHSM = '/usr/lib/softhsm/libsofthsm2.so';

interface Leg {
  readonly server: Server;
  readonly credential?: Credential;
  readonly projectId: string;
  readonly bodies: ReadonlyMap<string, string>;
}

interface Measured extends LoadResult {
  readonly cpuUsPerRequest: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const dataDirs: string[] = [];
  const servers: Server[] = [];
  const legs = new Map<string, Leg>();
  try {
    let ceilingToken: { dataDir: string; keyId: string } | undefined;
    for (const build of builds) {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), `kms-compare-${build.name}-`));
      dataDirs.push(dataDir);
      const { server, credential } = await startService(build.name, path.join(build.dir, 'dist', 'main.js'), dataDir);
      servers.push(server);
      const keyId = ((await call(server.url, credential, 'create-key', { key_alias: 'bench' })) as { key_info: { key_id: string } }).key_info.key_id;
      legs.set(build.name, { server, credential, projectId: credential.projectId, bodies: await workloadBodies(server.url, credential, keyId) });
      ceilingToken ??= { dataDir, keyId };
    }
    const softhsm = path.join(ceilingToken!.dataDir, 'softhsm');
    const ceiling = await startServer('ceiling', [TSX, path.join(ROOT, 'bench', 'ceiling-server.ts')], {
      SOFTHSM2_CONF: path.join(softhsm, 'softhsm2.conf'),
      BENCH_MODULE: SOFTHSM,
      BENCH_TOKEN_LABEL: 'kms',
      BENCH_PIN_FILE: path.join(softhsm, 'user.pin'),
      BENCH_KEY_LABEL: `kms/${ceilingToken!.keyId}/v0`,
    });
    servers.push(ceiling);
    const ceilingBody = JSON.stringify({ key_id: ceilingToken!.keyId });
    legs.set('ceiling', { server: ceiling, projectId: 'bench', bodies: new Map(endpoints.map((endpoint) => [endpoint, ceilingBody])) });

    /** One load of one server, with the server's CPU time per request (its processes', from /proc: the load generator's not counted). */
    const run = async (name: string, endpoint: string, connections: number, seconds: number): Promise<Measured> => {
      const leg = legs.get(name)!;
      const pathname = `/v1.0/${leg.projectId}/kms/${name === 'ceiling' ? 'create-datakey' : endpoint}`;
      const cpuBefore = treeCpuSeconds(leg.server.child.pid!);
      const result = await load({ url: leg.server.url, path: pathname, body: leg.bodies.get(endpoint)!, connections, durationSeconds: seconds, ...(leg.credential ? { credential: leg.credential } : {}) });
      const cpuUs = ((treeCpuSeconds(leg.server.child.pid!) - cpuBefore) * 1e6) / Math.max(1, result.requests);
      return { ...result, cpuUsPerRequest: Math.round(cpuUs) };
    };
    const names = [...legs.keys()];
    // Every server warm first (WARM_UP_SECONDS says why), then a second of each other endpoint.
    for (const name of names) for (const endpoint of endpoints) await run(name, endpoint, Math.max(...connectionCounts), endpoint === endpoints[0] ? WARM_UP_SECONDS : 1);

    const results = new Map<string, Measured[]>();
    const key = (name: string, endpoint: string, connections: number): string => `${name}|${endpoint}|${connections}`;
    const loadAverages: number[] = [];
    for (let round = 0; round < rounds; round++) {
      loadAverages.push(os.loadavg()[0]!);
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const connections of connectionCounts) {
        for (const endpoint of endpoints) {
          for (const name of order) {
            const result = await run(name, endpoint, connections, durationSeconds);
            if (result.errors > 0 || result.non2xx > 0) throw new Error(`${name} ${endpoint}: ${result.non2xx} non-2xx, ${result.errors} errors`);
            const list = results.get(key(name, endpoint, connections)) ?? [];
            list.push(result);
            results.set(key(name, endpoint, connections), list);
          }
        }
      }
      process.stderr.write(`round ${round + 1}/${rounds} done\n`);
    }

    const rows: Array<Record<string, unknown>> = [];
    console.log(`\n${rounds} rotating rounds of ${durationSeconds} s, load average at each round's start: ${loadAverages.map((l) => l.toFixed(1)).join(', ')}`);
    console.log(`CPU: ${os.cpus()[0]?.model ?? 'unknown'} x ${os.cpus().length}, Node ${process.version}`);
    console.log('server | endpoint | conns | req/s (median) | p99 ms (median) | server CPU µs/request (median) | service/ceiling (median of rounds)');
    for (const connections of connectionCounts) {
      for (const endpoint of endpoints) {
        const ceilingRuns = results.get(key('ceiling', endpoint, connections))!;
        for (const name of names) {
          const runs = results.get(key(name, endpoint, connections))!;
          const ratio = name === 'ceiling' ? undefined : median(runs.map((r, i) => r.requestsPerSecond / ceilingRuns[i]!.requestsPerSecond));
          const row = {
            server: name,
            endpoint: name === 'ceiling' ? 'create-datakey' : endpoint,
            connections,
            requestsPerSecond: median(runs.map((r) => r.requestsPerSecond)),
            p99Ms: median(runs.map((r) => r.p99Ms)),
            cpuUsPerRequest: median(runs.map((r) => r.cpuUsPerRequest)),
            rounds: runs.map((r) => r.requestsPerSecond),
            ...(ratio === undefined ? {} : { serviceOverCeiling: Math.round(ratio * 100) / 100 }),
          };
          // Against the build listed before it, paired by round (both measured in the same minute of the same round).
          const previous = names.indexOf(name) > 0 && name !== 'ceiling' ? results.get(key(names[names.indexOf(name) - 1]!, endpoint, connections)) : undefined;
          const cpuRatio = previous ? median(runs.map((r, i) => r.cpuUsPerRequest / previous[i]!.cpuUsPerRequest)) : undefined;
          const rateRatio = previous ? median(runs.map((r, i) => r.requestsPerSecond / previous[i]!.requestsPerSecond)) : undefined;
          rows.push({ ...row, cpuRounds: runs.map((r) => r.cpuUsPerRequest), ...(cpuRatio === undefined ? {} : { cpuVsPrevious: cpuRatio, requestsPerSecondVsPrevious: rateRatio }) });
          console.log(
            `${name} | ${row.endpoint} | ${connections} | ${row.requestsPerSecond.toLocaleString('en')} | ${row.p99Ms} | ${row.cpuUsPerRequest} | ${ratio === undefined ? '' : ratio.toFixed(2)}   (rounds: ${row.rounds.join(', ')}; CPU µs: ${runs.map((r) => r.cpuUsPerRequest).join(', ')})` +
              (cpuRatio === undefined ? '' : `; against the build before, paired by round: CPU ×${cpuRatio.toFixed(3)}, req/s ×${rateRatio!.toFixed(3)}`),
          );
        }
      }
    }
    const out = args.out ?? path.join(ROOT, 'bench', 'results', `compare-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    mkdirSync(path.dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify({ builds, rounds, durationSeconds, loadAverages, cpu: os.cpus()[0]?.model, rows }, null, 2)}\n`);
    console.log(`\nwritten to ${path.relative(ROOT, out)}`);
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
