import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { removeSoftHsmToken } from './softhsm-tokens';

/**
 * The PKCS#11 shim (bench/shim) loaded with pkcs11js in a child process of its own, on a fresh
 * SoftHSM token. A child because the shim reads KMS_SHIM_* from the real process environment when
 * it is loaded, which a Jest test file cannot set; each setting gets its process.
 */

const ROOT = path.resolve(__dirname, '..', '..');

/** A SoftHSM token made for one test file (in the run's token directory, global-setup.ts). */
export interface ProbeToken {
  readonly label: string;
  readonly pin: string;
  /** A scratch directory for this file, removed by {@link removeProbeToken}. */
  readonly dir: string;
}

export function makeProbeToken(): ProbeToken {
  const dir = mkdtempSync(path.join(tmpdir(), 'kms-shim-probe-'));
  const label = `kms-probe-${randomBytes(4).toString('hex')}`;
  const pin = randomBytes(12).toString('hex');
  const pinFile = path.join(dir, 'pin');
  writeFileSync(pinFile, `${pin}\n`, { mode: 0o600 });
  execFileSync('bash', [path.join(ROOT, 'hsm', 'ensure-softhsm.sh'), '--init-token', label, pinFile], { stdio: 'ignore' });
  return { label, pin, dir };
}

export function removeProbeToken(token: ProbeToken): void {
  rmSync(token.dir, { recursive: true, force: true });
  removeSoftHsmToken(token.label);
}

/** The child's environment: this one without any KMS_SHIM_* of its own, plus `shimEnv`. */
function childEnv(shimEnv: Record<string, string>, extra: Record<string, string>): NodeJS.ProcessEnv {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('KMS_SHIM_')));
  return { ...inherited, ...shimEnv, ...extra };
}

/** GCM parameters as pkcs11js 2.1.7 builds them (both come out as the 48-byte layout). */
export interface GcmParameter {
  readonly type: 'CK_PARAMS_AES_GCM_v240' | 'CK_PARAMS_AES_GCM';
  readonly iv: Buffer;
  readonly aad?: Buffer;
}

export interface TokenSessionInfo {
  readonly maxSessionCount: number;
  readonly sessionCount: number;
  readonly rwSessionCount: number;
}

/** What the child does, and answers, for each request (shim-probe-child.ts). */
export interface ProbeOps {
  /** C_EncryptInit (CKM_AES_GCM, 128-bit tag) and C_Encrypt under the probe's key; `iv` is the parameter's IV buffer afterwards. */
  encrypt: { args: { parameter: GcmParameter; data: Buffer }; result: { iv: Buffer; data: Buffer } };
  /** C_DecryptInit and C_Decrypt under the probe's key. */
  decrypt: { args: { parameter: GcmParameter; data: Buffer }; result: Buffer };
  /** Opens up to `count` more sessions, stopping at the first refusal. */
  openSessions: { args: { count: number; rw: boolean }; result: { opened: number; ckr?: number } };
  /** Closes the last of those sessions. */
  closeSession: { args: Record<string, never>; result: null };
  /** C_CloseAllSessions on the token's slot (the probe's own session too). */
  closeAllSessions: { args: Record<string, never>; result: null };
  /** C_Finalize, C_Initialize, and the probe's session and key again. */
  reinitialize: { args: Record<string, never>; result: null };
  tokenInfo: { args: Record<string, never>; result: TokenSessionInfo };
  info: { args: Record<string, never>; result: { manufacturerID: string; libraryDescription: string } };
}
export type ProbeOp = keyof ProbeOps;

/** A PKCS#11 error in the child: `code` is the CKR, as on pkcs11js's own Pkcs11Error. */
export class ProbeCkrError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export interface ShimProbe {
  call<K extends ProbeOp>(op: K, args: ProbeOps[K]['args']): Promise<ProbeOps[K]['result']>;
  stop(): Promise<void>;
}

type ChildReply = { id: number; result: unknown } | { id: number; ckr: number; message: string } | { id: number; error: string };

/**
 * Starts a child that loads `module` with `shimEnv`, logs in to `token` and makes an AES-256 session
 * key of value `key` (known, so that a test can check the ciphertext with node's own AES-GCM).
 */
export async function startShimProbe(module: string, token: ProbeToken, shimEnv: Record<string, string>, key: Buffer): Promise<ShimProbe> {
  const child: ChildProcess = fork(path.join(__dirname, 'shim-probe-child.ts'), [module], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: childEnv(shimEnv, { KMS_PROBE_TOKEN_LABEL: token.label, KMS_PROBE_PIN: token.pin, KMS_PROBE_KEY: key.toString('hex') }),
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  await new Promise<void>((resolve, reject) => {
    child.once('message', (message: unknown) => (message === 'ready' ? resolve() : reject(new Error(`probe did not start: ${String(message)}`))));
    void exited.then((code) => reject(new Error(`probe exited (${code}):\n${output}`)));
  });

  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  child.on('message', (message: ChildReply) => {
    const waiter = pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id);
    if ('result' in message) waiter.resolve(message.result);
    else if ('ckr' in message) waiter.reject(new ProbeCkrError(message.message, message.ckr));
    else waiter.reject(new Error(message.error));
  });
  void exited.then((code) => {
    for (const waiter of pending.values()) waiter.reject(new Error(`probe exited (${code}):\n${output}`));
    pending.clear();
  });
  let next = 0;
  return {
    call<K extends ProbeOp>(op: K, args: ProbeOps[K]['args']): Promise<ProbeOps[K]['result']> {
      const id = next++;
      return new Promise<ProbeOps[K]['result']>((resolve, reject) => {
        // The child answers `id` with the result of `op`, of the type ProbeOps says.
        pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
        child.send({ id, op, args });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

let layoutProbe: string | undefined;

/** test/helpers/gcm-layout-probe.c, compiled once per test file into `dir`. */
function builtLayoutProbe(dir: string): string {
  if (!layoutProbe) {
    layoutProbe = path.join(dir, 'gcm-layout-probe');
    execFileSync(process.env.CC ?? 'cc', [
      '-O2',
      '-Wall',
      '-Wextra',
      '-I',
      path.join(ROOT, 'node_modules', 'pkcs11js', 'includes', 'pkcs11'),
      '-o',
      layoutProbe,
      path.join(__dirname, 'gcm-layout-probe.c'),
      '-ldl',
    ]);
  }
  return layoutProbe;
}

export interface LayoutProbeInput {
  readonly key: Buffer;
  readonly iv: Buffer;
  readonly aad: Buffer;
  readonly data: Buffer;
  readonly ciphertext: Buffer;
}

/** Runs the C probe (see gcm-layout-probe.c) on `module` with `shimEnv`; its JSON answer. */
export function runLayoutProbe(module: string, token: ProbeToken, shimEnv: Record<string, string>, scenario: 'layouts' | 'token-output', input: LayoutProbeInput): unknown {
  const hex = [input.key, input.iv, input.aad, input.data, input.ciphertext].map((bytes) => bytes.toString('hex'));
  const stdout = execFileSync(builtLayoutProbe(token.dir), [module, token.label, token.pin, ...hex, scenario], { env: childEnv(shimEnv, {}) });
  return JSON.parse(stdout.toString()) as unknown;
}
