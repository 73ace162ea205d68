/**
 * Where the bytes a create-datakey allocates come from (issue 21):
 *
 *   npm run build && npx tsx bench/heap-profile.ts [--duration 5] [--connections 32] [--top 40]
 *
 * Runs the service as users run it (dist/main.js, its defaults) with bench/heap-sampler.cjs
 * preloaded in every process, warms it up, then samples every worker's allocations (V8's sampling
 * heap profiler, objects freed since included) during a signed create-datakey load. Prints the
 * bytes allocated per request: by allocating function (the frame that allocated), by the nearest
 * frame of our own code (dist/) that led to it, and by package. The profiles
 * (bench/results/heap-<time>/*.heapprofile) open in Chrome's DevTools (Memory).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { call } from './kms-calls';
import { load } from './load';
import { ROOT, startService } from './processes';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    top: { type: 'string', default: '40' },
    main: { type: 'string', default: path.join('dist', 'main.js') },
    survivors: { type: 'boolean', default: false },
  },
});

interface HeapNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly HeapNode[];
}

function workerPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) return url.slice(modules + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url || '(native)';
}

function packageOf(url: string): string {
  const modules = url.lastIndexOf('node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.includes('/dist/')) return 'ours (dist/)';
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').split('/')[0]!;
  return url || '(native, no JavaScript caller)';
}

function add(map: Map<string, number>, key: string, bytes: number): void {
  map.set(key, (map.get(key) ?? 0) + bytes);
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'kms-heap-'));
  const outDir = path.join(ROOT, 'bench', 'results', `heap-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(outDir, { recursive: true });
  const started = await startService('service', path.resolve(ROOT, args.main!), dataDir, {
    env: { NODE_OPTIONS: `--require ${path.join(ROOT, 'bench', 'heap-sampler.cjs')}`, KMS_HEAP_PROFILE_DIR: outDir, ...(args.survivors ? { KMS_HEAP_SURVIVORS: '1' } : {}) },
  });
  const service = started.server;
  try {
    const { credential } = started;
    const keyId = ((await call(service.url, credential, 'create-key', { key_alias: 'heap' })) as { key_info: { key_id: string } }).key_info.key_id;
    const pathname = `/v1.0/${credential.projectId}/kms/create-datakey`;
    const body = JSON.stringify({ key_id: keyId });
    const connections = Number(args.connections);
    await load({ url: service.url, path: pathname, body, connections, durationSeconds: 2, credential });
    const workers = workerPids(service.child.pid!);
    for (const pid of workers) process.kill(pid, 'SIGUSR2');
    const result = await load({ url: service.url, path: pathname, body, connections, durationSeconds: Number(args.duration), credential });
    for (const pid of workers) process.kill(pid, 'SIGUSR2');
    while (!workers.every((pid) => existsSync(path.join(outDir, `${pid}.done`)))) await new Promise((resolve) => setTimeout(resolve, 100));
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx, ${result.errors} errors`);

    const byFunction = new Map<string, number>();
    const byOurs = new Map<string, number>();
    const byPackage = new Map<string, number>();
    let total = 0;
    for (const file of readdirSync(outDir).filter((name) => name.endsWith('.heapprofile'))) {
      const { head } = JSON.parse(readFileSync(path.join(outDir, file), 'utf8')) as { head: HeapNode };
      const walk = (node: HeapNode, ours: string, lastJs: string): void => {
        const { functionName, url, lineNumber } = node.callFrame;
        const here = `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
        const nearestOurs = url.includes('/dist/') ? here : ours;
        const js = url === '' ? lastJs : url;
        if (node.selfSize > 0) {
          total += node.selfSize;
          add(byFunction, url === '' ? `${here} ← ${shortUrl(lastJs)}` : here, node.selfSize);
          add(byOurs, nearestOurs, node.selfSize);
          add(byPackage, packageOf(js), node.selfSize);
        }
        for (const child of node.children) walk(child, nearestOurs, js);
      };
      walk(head, '(no frame of ours)', '');
    }
    const perRequest = (bytes: number): string => (bytes / result.requests).toFixed(0).padStart(7);
    const top = Number(args.top);
    console.log(
      `create-datakey at ${connections} connections for ${args.duration} s: ${result.requests} requests, ${result.requestsPerSecond} req/s; ` +
        `${os.cpus()[0]?.model} x ${os.cpus().length}, load average ${os.loadavg()[0]!.toFixed(1)}`,
    );
    console.log(`sampled allocations: ${(total / result.requests / 1024).toFixed(1)} KB per request (objects freed since included)\n`);
    const print = (title: string, map: Map<string, number>, count: number): void => {
      console.log(`${title} (bytes per request)`);
      for (const [name, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) console.log(`${perRequest(bytes)}  ${name}`);
      console.log('');
    };
    print('by package', byPackage, 25);
    print('by nearest frame of our own code', byOurs, top);
    print('by allocating function', byFunction, top);
    console.log(`profiles: ${path.relative(process.cwd(), outDir)}`);
  } finally {
    await service.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
