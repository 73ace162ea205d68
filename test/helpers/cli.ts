import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import type { TestService } from './service';

const ROOT = path.resolve(__dirname, '..', '..');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the operator's command line (`npm run kms -- ...`) in its own process, on the data
 * directory and token of a running test service, as an operator would beside the service.
 */
export function runCli(t: TestService, args: string[]): Promise<CliResult> {
  return runCliOn({ KMS_DATA_DIR: t.dataDir, ...t.moduleEnv }, args);
}

/** Runs the command line with these variables added to the test's environment. */
export function runCliOn(extraEnv: NodeJS.ProcessEnv, args: string[]): Promise<CliResult> {
  return collect(spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli.ts'), ...args], { cwd: ROOT, env: { ...process.env, ...extraEnv } }));
}

/**
 * Runs the command line with a terminal as its standard output, as an operator types it: under
 * util-linux's script(1), which gives it a pseudo-terminal (output lines end in CRLF there).
 */
export function runCliOnTerminal(t: TestService, args: string[]): Promise<CliResult> {
  const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, '--import', 'tsx', path.join(ROOT, 'src', 'cli.ts'), ...args].map(quote).join(' ');
  return collect(spawn('script', ['-qec', command, '/dev/null'], { cwd: ROOT, env: { ...process.env, KMS_DATA_DIR: t.dataDir, ...t.moduleEnv } }));
}

function collect(child: ChildProcessWithoutNullStreams): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}
