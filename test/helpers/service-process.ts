import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { eventually } from './eventually';

/**
 * The service as users run it: `src/main.ts` in its own process on the embedded defaults, with no
 * SoftHSM configuration of its own (so it creates its token under the data directory).
 */
export interface Started {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
}

export const ROOT = path.resolve(__dirname, '..', '..');
const START_LIMIT_MS = 60_000;

export interface AdminCredentials {
  project_id: string;
  access_key: string;
  secret_key: string;
  token: string;
}

export function readAdminCredentials(dataDir: string): AdminCredentials {
  const file = path.join(dataDir, 'admin-credentials.json');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  return JSON.parse(readFileSync(file, 'utf8')) as AdminCredentials;
}

/** The environment of a service process on `dataDir`: the test run's SoftHSM configuration removed. */
export function processEnv(dataDir: string, extraEnv: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, KMS_DATA_DIR: dataDir, PORT: '0', KMS_LOG_LEVEL: 'debug', ...extraEnv };
  delete env.SOFTHSM2_CONF;
  return env;
}

/**
 * Spawns `src/<script>` (or the script at an absolute path) in node with tsx's loader (`node
 * --import tsx`), collecting everything it prints. Not through the tsx command: it relays a signal
 * to its child and SIGKILLs the child when the child has not acknowledged it within 60 ms, which a
 * busy service may not have (exit 143 while the service was stopping cleanly). `detached` puts it in a process
 * group of its own, so that a test can crash all of it at once (see {@link startServiceProcess}).
 */
export function spawnScript(
  script: string,
  env: NodeJS.ProcessEnv,
  args: readonly string[] = [],
  options: { detached?: boolean } = {},
): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.isAbsolute(script) ? script : path.join(ROOT, 'src', script), ...args], { cwd: ROOT, env, detached: options.detached ?? false });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return { child, output: () => output };
}

/** Starts the service on `dataDir` and resolves once it says "KMS listening" (a cluster: once every worker listens). */
export function startProcess(dataDir: string, extraEnv: NodeJS.ProcessEnv = {}, options: { detached?: boolean } = {}): Promise<Started> {
  const { child, output } = spawnScript('main.ts', processEnv(dataDir, extraEnv), [], options);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`service did not start:\n${output()}`)), START_LIMIT_MS);
    const onData = (): void => {
      const url = /"msg":"KMS listening"/.test(output()) ? /"url":"(https?:[^"]+)"/.exec(output())?.[1] : undefined;
      if (url) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve({ child, url, output });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`service exited with ${code}:\n${output()}`)));
  });
}

/** Runs the service until it exits by itself (a start that must fail): its exit code and all it printed. */
export async function runUntilExit(env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const { child, output } = spawnScript('main.ts', env);
  return { code: await exitOf(child), output: output() };
}

export function exitOf(child: ChildProcess): Promise<number | null> {
  // 'close', not 'exit': the child's last log lines may still be in its stdout pipe at 'exit'.
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('close', (code) => resolve(code));
  });
}

/** Resolves once the process has printed a line matching `pattern` (at least `count` of them). */
export function waitForOutput(started: { output: () => string; child: ChildProcess }, pattern: RegExp, count = 1, timeoutMs = 30_000): Promise<void> {
  const global = new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : `${pattern.flags}g`);
  const seen = (): boolean => (started.output().match(global) ?? []).length >= count;
  return new Promise((resolve, reject) => {
    if (seen()) return resolve();
    const timer = setTimeout(() => {
      started.child.stdout!.off('data', check);
      reject(new Error(`no ${count} × ${pattern} in:\n${started.output()}`));
    }, timeoutMs);
    const check = (): void => {
      if (!seen()) return;
      clearTimeout(timer);
      started.child.stdout!.off('data', check);
      resolve();
    };
    started.child.stdout!.on('data', check);
  });
}

/** The cluster workers that answered requests (each debug access-log line names its worker). */
export function workersThatServed(started: { output: () => string }): Set<number> {
  return new Set(
    started
      .output()
      .split('\n')
      .filter((line) => line.includes('"msg":"request"'))
      .map((line) => (JSON.parse(line) as { worker: number }).worker),
  );
}

export interface Reply {
  key_info?: { key_id: string };
  cipher_text?: string;
  plain_text?: string;
  data_key?: string;
  error_code?: string;
}

/** POSTs on a connection of its own, so that the cluster's primary hands each to a worker in turn. */
export function postAlone(url: string, admin: AdminCredentials, operation: string, body: unknown): Promise<{ status: number; body: Reply }> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'x-auth-token': admin.token };
    const outgoing = request(`${url}/v1.0/${admin.project_id}/kms/${operation}`, { method: 'POST', agent: false, headers }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Reply }));
    });
    outgoing.on('error', reject);
    outgoing.end(JSON.stringify(body));
  });
}

/** A service process a test can crash as a machine crash would: every process of it at once. */
export interface ServiceProcess extends Started {
  /** SIGKILL to the whole process group; resolves once none of its processes is alive. */
  crash(): Promise<void>;
  /** SIGTERM, as an operator stops it; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts the service on `dataDir` in a process group of its own (info-level logs); resolves once it listens. */
export async function startServiceProcess(dataDir: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<ServiceProcess> {
  const started = await startProcess(dataDir, { KMS_LOG_LEVEL: 'info', ...extraEnv }, { detached: true });
  const group = started.child.pid!;
  return {
    ...started,
    crash: async () => {
      const closed = exitOf(started.child);
      await crashGroup(group);
      await closed;
    },
    stop: () => {
      const closed = exitOf(started.child);
      started.child.kill('SIGTERM');
      return closed;
    },
  };
}

/** Kills every process of the group and waits until none is left running (zombies count as gone). */
async function crashGroup(group: number): Promise<void> {
  try {
    process.kill(-group, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  await eventually(`every process of group ${group} to be gone`, () => liveProcessesOf(group), { until: (live) => live === 0, everyMs: 10 });
}

/** Processes of a process group that are not zombies, from /proc (Linux). */
function liveProcessesOf(group: number): number {
  let live = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so read after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === group && state !== 'Z' && state !== 'X') live++;
  }
  return live;
}
