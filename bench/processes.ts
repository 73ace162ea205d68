import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Credential } from './load';

export const ROOT = path.resolve(__dirname, '..');

export interface Server {
  readonly name: string;
  readonly url: string;
  readonly child: ChildProcess;
  /** Milliseconds from spawn until it answered that it listens. */
  readonly startupMs: number;
  stop(): Promise<void>;
}

/**
 * Starts a server process and waits for the line that says where it listens: the service's
 * "KMS listening" log line (with "url") or the bench servers' {"listening": address}.
 */
export function startServer(name: string, args: string[], env: NodeJS.ProcessEnv): Promise<Server> {
  const started = Date.now();
  const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      const url = /"url":"(http:[^"]+)"/.exec(output)?.[1] ?? portUrl(output);
      if (!url) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      child.off('exit', onExit);
      resolve({
        name,
        url,
        child,
        startupMs: Date.now() - started,
        stop: () => stopChild(child),
      });
    };
    const onExit = (code: number | null): void => reject(new Error(`${name} exited (${code}) before listening:\n${output}`));
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', onExit);
  });
}

/**
 * Starts a built service (`mainJs`, a dist/main.js) with its defaults, as users run it, its stdout
 * (the access log, on by default) going to a file in its data directory as in production, not to
 * the benchmark through a pipe; resolves once it listens, with the admin credential it made.
 * `nodeArgs` go before the script (a cluster's workers inherit them: --cpu-prof, say).
 */
export async function startService(
  name: string,
  mainJs: string,
  dataDir: string,
  options: { nodeArgs?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<{ server: Server; credential: Credential; logFile: string }> {
  const logFile = path.join(dataDir, 'service.log');
  // A service started again on the same data directory appends: its own lines are those after these.
  const offset = existsSync(logFile) ? statSync(logFile).size : 0;
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), mainJs], {
    cwd: ROOT,
    env: { ...process.env, KMS_DATA_DIR: dataDir, PORT: '0', KMS_LOG_LEVEL: 'info', SOFTHSM2_CONF: '', ...options.env },
    stdio: ['ignore', out, 'pipe'],
  });
  closeSync(out);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const started = Date.now();
  let url: string | undefined;
  while (!url) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before listening:\n${stderr}`);
    if (Date.now() - started > 60_000) throw new Error(`${name} did not listen within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    url = /"url":"(http:[^"]+)"/.exec(readFileSync(logFile).subarray(offset).toString('utf8'))?.[1];
  }
  const server: Server = {
    name,
    url,
    child,
    startupMs: Date.now() - started,
    stop: () => stopChild(child),
  };
  const admin = JSON.parse(readFileSync(path.join(dataDir, 'admin-credentials.json'), 'utf8')) as Record<string, string>;
  return { server, credential: { projectId: admin.project_id!, accessKey: admin.access_key!, secretKey: admin.secret_key! }, logFile };
}

function portUrl(output: string): string | undefined {
  const port = /"listening":\{[^}]*"port":(\d+)/.exec(output)?.[1];
  return port ? `http://127.0.0.1:${port}` : undefined;
}

/** A process and its descendants (a cluster's workers), from /proc. */
function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // The process has gone, or the kernel does not offer the list: count the process alone.
  }
  return [pid, ...children.flatMap(processTree)];
}

function statusKb(pid: number, field: string): number {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Resets the peak resident set size the kernel keeps (VmHWM) for a process and its children, where allowed. */
export function resetPeakRss(pid: number): void {
  for (const member of processTree(pid)) {
    try {
      writeFileSync(`/proc/${member}/clear_refs`, '5');
    } catch {
      // Not permitted here: the peak then covers the process's whole life, which is still an upper bound.
    }
  }
}

/** Peak resident set size of a process and its children together, in MB (sum of VmHWM). */
export function peakRssMb(pid: number): number {
  return Math.round(processTree(pid).reduce((total, member) => total + statusKb(member, 'VmHWM'), 0) / 1024);
}

/** Current resident set size of a process and its children together, in MB. */
export function currentRssMb(pid: number): number {
  return Math.round(processTree(pid).reduce((total, member) => total + statusKb(member, 'VmRSS'), 0) / 1024);
}

function pssKb(pid: number): number {
  try {
    const match = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Proportional set size of a process and its children together, in MB: each shared page counted
 * once in all (divided among the processes that map it). For a cluster this is the memory it
 * occupies; a sum of RSS counts the pages the workers share (Node's code, the libraries) once per
 * worker.
 */
export function currentPssMb(pid: number): number {
  return Math.round(processTree(pid).reduce((total, member) => total + pssKb(member), 0) / 1024);
}

/** Samples the tree's PSS every `intervalMs` until stopped; `stop()` returns the highest seen, in MB. */
export function samplePeakPss(pid: number, intervalMs = 250): { stop(): number } {
  let peak = currentPssMb(pid);
  const timer = setInterval(() => (peak = Math.max(peak, currentPssMb(pid))), intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, currentPssMb(pid));
    },
  };
}

/** Which CPU time: in the process's own code, in the kernel on its behalf (system calls such as fdatasync), or both. */
export type CpuPart = 'user' | 'system' | 'both';

/** CPU time (user + system, or one of them) a process has used so far, in seconds, from /proc (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number, part: CpuPart = 'both'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces: count the fields after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const user = part === 'system' ? 0 : Number(fields[11]);
  const system = part === 'user' ? 0 : Number(fields[12]);
  return (user + system) / 100;
}

/** CPU time of a process and its descendants (a cluster's workers) together, in seconds. */
export function treeCpuSeconds(pid: number, part: CpuPart = 'both'): number {
  return processTree(pid).reduce((total, member) => {
    try {
      return total + cpuSeconds(member, part);
    } catch {
      return total; // the process ended between the listing and the read
    }
  }, 0);
}

/** Stops a benchmark process with SIGTERM and waits for it to exit (at once when it already has). */
function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null) return done();
    child.once('exit', () => done());
    child.kill('SIGTERM');
  });
}
