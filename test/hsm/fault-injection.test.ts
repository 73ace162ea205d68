import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expectKmsError, kmsClient, type KmsClient } from '../helpers/client';
import { makeDataDir } from '../helpers/service';

/**
 * The service behind the fault-injecting PKCS#11 shim (bench/shim), which forwards to SoftHSM and
 * fails crypto calls with a chosen CKR while a file says so: what a real HSM's errors do to requests.
 */
const ROOT = path.resolve(__dirname, '..', '..');
const SHIM = path.join(ROOT, 'bench', 'shim', 'build', 'libkms-delay-shim.so');

let child: ChildProcess;
let output = '';
let kms: KmsClient;
let keyId: string;
const dataDir = makeDataDir();
const failFile = path.join(dataDir, 'fail-next-crypto-call');

beforeAll(async () => {
  if (!existsSync(SHIM)) execFileSync('sh', [path.join(ROOT, 'bench', 'shim', 'build.sh')]);
  const label = `kms-fault-${randomBytes(4).toString('hex')}`;
  const pinFile = path.join(dataDir, 'pin');
  writeFileSync(pinFile, `${randomBytes(12).toString('hex')}\n`, { mode: 0o600 });
  execFileSync('bash', [path.join(ROOT, 'hsm', 'ensure-softhsm.sh'), '--init-token', label, pinFile]);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KMS_DATA_DIR: path.join(dataDir, 'data'),
    PORT: '0',
    KMS_PKCS11_MODULE: SHIM,
    KMS_PKCS11_TOKEN_LABEL: label,
    KMS_PKCS11_PIN_FILE: pinFile,
    KMS_SHIM_FAIL_FILE: failFile,
  };
  child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'main.ts')], { cwd: ROOT, env });
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
  kms = kmsClient(url, admin.project_id, { 'x-auth-token': admin.token });
  keyId = (await kms.call('create-key', { key_alias: 'faults' })).body.key_info.key_id;
}, 30_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  rmSync(dataDir, { recursive: true, force: true });
});

/** Whether the service's output shows `text` (its log lines travel over a pipe, after its response). */
async function logged(text: string): Promise<boolean> {
  for (let waited = 0; waited < 5000 && !output.includes(text); waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  return output.includes(text);
}

function failCryptoCalls(ckr: number, always = false): void {
  writeFileSync(failFile, `0x${ckr.toString(16)}${always ? ' always' : ''}\n`);
}

describe('HSM failures, injected under the service', () => {
  it('a device error on one call: the module is re-initialised and the request still succeeds', async () => {
    failCryptoCalls(0x30); // CKR_DEVICE_ERROR
    const response = await kms.call('create-datakey', { key_id: keyId });
    expect(response.status).toBe(200);
    expect(existsSync(failFile)).toBe(false); // the failure did happen
    expect(await logged('re-initialising the module')).toBe(true);
  });

  it('a lost session on one call: the session is replaced and the request still succeeds', async () => {
    failCryptoCalls(0xb3); // CKR_SESSION_HANDLE_INVALID
    const created = await kms.call('create-datakey', { key_id: keyId });
    expect(created.status).toBe(200);
    expect(existsSync(failFile)).toBe(false);
    expect(await logged('HSM session lost')).toBe(true);
  });

  it('a device that stays broken: 503 KMS.0104 with no HSM detail, and service again once it is back', async () => {
    failCryptoCalls(0x30, true);
    const response = await kms.call('create-datakey', { key_id: keyId });
    expectKmsError(response, 503, 'KMS.0104');
    expect(JSON.stringify(response.body)).not.toMatch(/CKR|0x30|device/i);
    rmSync(failFile);
    expect((await kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
  });

  it('an unexpected HSM error: 500 KMS.0103, detail in the log only', async () => {
    failCryptoCalls(0x06); // CKR_FUNCTION_FAILED
    const response = await kms.call('create-datakey-without-plaintext', { key_id: keyId });
    expectKmsError(response, 500, 'KMS.0103');
    expect(JSON.stringify(response.body)).not.toContain('CKR_');
    expect(await logged('CKR_FUNCTION_FAILED')).toBe(true);
  });

  it('a bad-tag answer on decrypt is the caller\'s bad ciphertext (400 KMS.2201), not a server error', async () => {
    const created = await kms.call('create-datakey', { key_id: keyId });
    failCryptoCalls(0x40); // CKR_ENCRYPTED_DATA_INVALID
    expectKmsError(await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' }), 400, 'KMS.2201');
    expect((await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' })).status).toBe(200);
  });
});
