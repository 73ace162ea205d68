import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Removes a token of the run's SoftHSM token directory (global-setup.ts) by its label, once the
 * test file that made it is done with it. Every test file makes its tokens in that one directory,
 * and SoftHSM reads every token there each time a process initialises it (each service, CLI,
 * shim and softhsm2-util process), so tokens left behind until the end of the run make every later
 * start slower. What a file that dies before its clean-up leaves, global-teardown.ts removes.
 * Through softhsm2-util, SoftHSM's own tool: how it lays out a token on disk is its business.
 *
 * One race is SoftHSM's, not ours: another test file's process that initialised SoftHSM while this
 * token existed holds it in memory and may write its `generation` file again after the tool
 * removed the token's files, so that the tool's last step, removing the directory, fails
 * ("Could not delete the directory: <path>"). The token is gone by then (its object and token
 * files are); the directory the tool names is removed here instead.
 */
export function removeSoftHsmToken(label: string): void {
  const result = spawnSync('softhsm2-util', ['--delete-token', '--token', label], { encoding: 'utf8' });
  if (result.status === 0) return;
  const leftover = /Could not delete the directory: (\S+)/.exec(result.stderr ?? '');
  if (leftover) {
    rmSync(leftover[1]!, { recursive: true, force: true });
    return;
  }
  throw new Error(`softhsm2-util could not remove the token ${label}: ${result.stderr.trim() || String(result.error)}`);
}
