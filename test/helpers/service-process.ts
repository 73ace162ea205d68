import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
const START_LIMIT_MS = 60_000;

/**
 * The service as users start it (`tsx src/main.ts`, the sources of this checkout) in a process
 * group of its own, so that a test can crash it as a machine crash would: every process of it at
 * once, the cluster's primary, initialiser and workers alike.
 */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** SIGKILL to the whole process group; resolves once none of its processes is alive. */
  crash(): Promise<void>;
  /** SIGTERM, as an operator stops it; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts the service on `dataDir` (embedded SoftHSM under it) on a free port; resolves once it listens. */
export function startServiceProcess(dataDir: string, extraEnv: NodeJS.ProcessEnv = {}): Promise<ServiceProcess> {
  const env: NodeJS.ProcessEnv = { ...process.env, KMS_DATA_DIR: dataDir, PORT: '0', ...extraEnv };
  // The service must make (and find again) its own token under the data directory, not the test run's.
  delete env.SOFTHSM2_CONF;
  const child = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(ROOT, 'src', 'main.ts')], { cwd: ROOT, env, detached: true });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const group = child.pid!;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void crashGroup(group).then(() => reject(new Error(`service did not start:\n${output}`)));
    }, START_LIMIT_MS);
    const onData = (): void => {
      const url = /"msg":"KMS listening"/.test(output) ? /"url":"(http:[^"]+)"/.exec(output)?.[1] : undefined;
      if (!url) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({
        child,
        url,
        output: () => output,
        crash: async () => {
          await crashGroup(group);
          await closed;
        },
        stop: () => {
          child.kill('SIGTERM');
          return closed;
        },
      });
    };
    child.stdout!.on('data', onData);
    void closed.then((code) => {
      clearTimeout(timer);
      reject(new Error(`service exited with ${code} before it listened:\n${output}`));
    });
  });
}

/** Kills every process of the group and waits until none is left running (zombies count as gone). */
async function crashGroup(group: number): Promise<void> {
  try {
    process.kill(-group, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  while (liveProcessesOf(group) > 0) await new Promise((resolve) => setTimeout(resolve, 10));
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
