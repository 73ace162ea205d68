import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { kmsClient, type KmsClient } from './client';
import { makeDataDir } from './service';

const ROOT = path.resolve(__dirname, '..', '..');
const SHIM = path.join(ROOT, 'bench', 'shim', 'build', 'libkms-delay-shim.so');

/**
 * The service in its own process behind the fault-injecting PKCS#11 shim (bench/shim), which
 * forwards to SoftHSM and fails or hangs the calls its control files name. A child process because
 * the shim reads its environment from the real process environment, which Jest does not let a test
 * file change.
 */
export interface ShimService {
  readonly kms: KmsClient;
  /** While this file exists, the calls it names fail (see bench/shim/delay-shim.c). */
  readonly failFile: string;
  /** While this file exists, the calls it names hang; each one that does is listed in `${hangFile}.calls`. */
  readonly hangFile: string;
  /** Everything the service wrote to stdout and stderr so far. */
  output(): string;
  /** Whether the output shows `text` within a few seconds (log lines travel over a pipe, after the response). */
  logged(text: string): Promise<boolean>;
  /** The calls that have hung so far, in order. */
  hungCalls(): string[];
  stop(): Promise<void>;
}

export async function startShimService(env: Record<string, string> = {}): Promise<ShimService> {
  if (!existsSync(SHIM)) execFileSync('sh', [path.join(ROOT, 'bench', 'shim', 'build.sh')]);
  const dataDir = makeDataDir();
  const failFile = path.join(dataDir, 'fail');
  const hangFile = path.join(dataDir, 'hang');
  const label = `kms-shim-${randomBytes(4).toString('hex')}`;
  const pinFile = path.join(dataDir, 'pin');
  writeFileSync(pinFile, `${randomBytes(12).toString('hex')}\n`, { mode: 0o600 });
  execFileSync('bash', [path.join(ROOT, 'hsm', 'ensure-softhsm.sh'), '--init-token', label, pinFile]);
  const child: ChildProcess = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(ROOT, 'src', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      KMS_DATA_DIR: path.join(dataDir, 'data'),
      PORT: '0',
      KMS_PKCS11_MODULE: SHIM,
      KMS_PKCS11_TOKEN_LABEL: label,
      KMS_PKCS11_PIN_FILE: pinFile,
      KMS_SHIM_FAIL_FILE: failFile,
      KMS_SHIM_HANG_FILE: hangFile,
      ...env,
    },
  });
  let output = '';
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const found = /"url":"(http:[^"]+)"/.exec(output)?.[1];
      if (found) resolve(found);
    });
    child.once('exit', (code) => reject(new Error(`service exited (${code}):\n${output}`)));
  });
  const admin = JSON.parse(readFileSync(path.join(dataDir, 'data', 'admin-credentials.json'), 'utf8')) as { project_id: string; token: string };
  return {
    kms: kmsClient(url, admin.project_id, { 'x-auth-token': admin.token }),
    failFile,
    hangFile,
    output: () => output,
    async logged(text) {
      for (let waited = 0; waited < 5000 && !output.includes(text); waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
      return output.includes(text);
    },
    hungCalls: () => (existsSync(`${hangFile}.calls`) ? readFileSync(`${hangFile}.calls`, 'utf8').split('\n').filter(Boolean) : []),
    async stop() {
      rmSync(hangFile, { force: true }); // a hung call would keep the process from finishing
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
