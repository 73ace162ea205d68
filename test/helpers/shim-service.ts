import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { kmsClient, type KmsClient } from './client';
import { eventually } from './eventually';
import { makeDataDir } from './service';
import { removeSoftHsmToken } from './softhsm-tokens';

const ROOT = path.resolve(__dirname, '..', '..');
const SHIM_DIR = path.join(ROOT, 'bench', 'shim');
/** What the shims are made from: the source, and the build script that holds the FIPS-style defaults. */
const SHIM_SOURCES = [path.join(SHIM_DIR, 'delay-shim.c'), path.join(SHIM_DIR, 'build.sh')];
const SHIM = path.join(SHIM_DIR, 'build', 'libkms-delay-shim.so');
const FIPS_SHIM = path.join(SHIM_DIR, 'build', 'libkms-fips-shim.so');

/** Builds both shims when either is missing or older than what it is made from (npm install builds them). */
function buildShimsIfStale(): void {
  const newestSource = Math.max(...SHIM_SOURCES.map((file) => statSync(file).mtimeMs));
  if ([SHIM, FIPS_SHIM].some((built) => !existsSync(built) || statSync(built).mtimeMs < newestSource)) {
    execFileSync('sh', [path.join(SHIM_DIR, 'build.sh')]);
  }
}

/** The shim with SoftHSM's own behaviour unless KMS_SHIM_* says otherwise. */
export function builtShim(): string {
  buildShimsIfStale();
  return SHIM;
}

/** The same shim built with FIPS-style defaults (bench/shim/build.sh), for loading by path. */
export function builtFipsShim(): string {
  buildShimsIfStale();
  return FIPS_SHIM;
}

export interface ShimService {
  /** A client of the admin credential's project, by its token. */
  readonly kms: KmsClient;
  readonly admin: { readonly project_id: string; readonly access_key: string; readonly secret_key: string; readonly token: string };
  readonly url: string;
  /** The service's data directory (kms.sqlite, the audit chains). */
  readonly dataDir: string;
  /** Everything the service printed so far (its JSON log lines). */
  output(): string;
  /** Waits until the output matches `pattern` (true), for at most 10 s; fails naming the pattern after that. */
  logged(pattern: string | RegExp): Promise<boolean>;
  /**
   * Makes the shim fail calls with `ckr` (see bench/shim/delay-shim.c): the next crypto call, or
   * the next of the calls named in `words` ("C_DestroyObject"), every one with "always", after
   * making it with "after".
   */
  fail(ckr: number, ...words: string[]): void;
  /** Whether the fail file is still there (a one-shot failure has not happened yet). */
  failurePending(): boolean;
  /** Removes the fail file: calls succeed again. */
  clearFailure(): void;
  /** While this file exists, the calls it names fail (see bench/shim/delay-shim.c). */
  readonly failFile: string;
  /** While this file exists, the calls it names hang; each one that does is listed in `${hangFile}.calls`. */
  readonly hangFile: string;
  /** The calls that have hung so far, in order. */
  hungCalls(): string[];
  stop(): Promise<void>;
}

/** The shim's service stopped before it listened (a start-up failure); its fail file is left for the test to read. */
export class ShimServiceExited extends Error {
  constructor(
    message: string,
    readonly failFile: string,
  ) {
    super(message);
  }
}

/**
 * The real service (`src/main.ts`, one process) behind the fault-injecting PKCS#11 shim on a fresh
 * SoftHSM token: what a real HSM's errors and hangs do to it, injected exactly when a test wants. A
 * child process because the shim reads its environment from the real process environment, which
 * Jest does not let a test file change.
 */
export async function startShimService(env: Record<string, string> = {}, options: { failFromStart?: string } = {}): Promise<ShimService> {
  const shim = builtShim();
  const root = makeDataDir();
  const dataDir = path.join(root, 'data');
  const failFile = path.join(root, 'fail');
  const hangFile = path.join(root, 'hang');
  const label = `kms-shim-${randomBytes(4).toString('hex')}`;
  const pinFile = path.join(root, 'pin');
  writeFileSync(pinFile, `${randomBytes(12).toString('hex')}\n`, { mode: 0o600 });
  execFileSync('bash', [path.join(ROOT, 'hsm', 'ensure-softhsm.sh'), '--init-token', label, pinFile], { stdio: 'ignore' });
  // The fail file's lines (see bench/shim/delay-shim.c) for the service's own start-up.
  if (options.failFromStart) writeFileSync(failFile, options.failFromStart);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      KMS_DATA_DIR: dataDir,
      PORT: '0',
      KMS_WORKERS: '1',
      KMS_PKCS11_MODULE: shim,
      KMS_PKCS11_TOKEN_LABEL: label,
      KMS_PKCS11_PIN_FILE: pinFile,
      KMS_SHIM_FAIL_FILE: failFile,
      KMS_SHIM_HANG_FILE: hangFile,
      // The shim stands for a network HSM, whose calls must run off the event loop (and can hang there).
      KMS_PKCS11_CRYPTO_CALLS: 'async',
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
    child.once('exit', (code) => reject(new ShimServiceExited(`service exited (${code}):\n${output}`, failFile)));
  });
  const admin = JSON.parse(readFileSync(path.join(dataDir, 'admin-credentials.json'), 'utf8')) as ShimService['admin'];
  const matches = (pattern: string | RegExp): boolean => (typeof pattern === 'string' ? output.includes(pattern) : pattern.test(output));
  return {
    kms: kmsClient(url, admin.project_id, { 'x-auth-token': admin.token }),
    admin,
    url,
    dataDir,
    output: () => output,
    async logged(pattern) {
      // Log lines travel over a pipe, after the response that a test has already seen.
      return eventually(`the service to log ${String(pattern)}`, () => matches(pattern));
    },
    fail(ckr, ...words) {
      writeFileSync(failFile, `0x${ckr.toString(16)} ${words.join(' ')}\n`);
    },
    failurePending: () => existsSync(failFile),
    clearFailure: () => rmSync(failFile, { force: true }),
    failFile,
    hangFile,
    hungCalls: () => (existsSync(`${hangFile}.calls`) ? readFileSync(`${hangFile}.calls`, 'utf8').split('\n').filter(Boolean) : []),
    async stop() {
      rmSync(hangFile, { force: true }); // a hung call would keep the process from finishing
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(root, { recursive: true, force: true });
      removeSoftHsmToken(label);
    },
  };
}
