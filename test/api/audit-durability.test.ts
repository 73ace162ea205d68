import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { auditLogFile, verifyAuditLog } from '../../src/audit/audit-log';
import { runCliOn } from '../helpers/cli';
import { kmsClient, type KmsResponse } from '../helpers/client';
import { makeDataDir } from '../helpers/service';
import { exitOf, processEnv, readAdminCredentials, spawnScript, startProcess, waitForOutput } from '../helpers/service-process';

/**
 * Fail-closed audit: no response leaves before its record is durable (KMS_AUDIT_SYNC). The service
 * runs in a process of its own on a slow disk (test/helpers/slow-audit-disk.ts: every write to the
 * chain is held a while first), so that a response sent before its record is written would reach
 * the client first every time. Clients drive create-datakey over several connections; when each
 * 200 arrives, the test reads the chain: its request id must be in the file already, and with
 * `always` within the length the last fdatasync covered. Then the service gets SIGKILL under load;
 * every request id answered 200 must be in the chain, and `audit verify` must pass (after a start
 * that moves a line torn by the kill aside).
 */

const CONNECTIONS = 8;
const ANSWERS = 60;
const WRITE_DELAY_MS = 25;
/** Two starts of the service, the load and `audit verify`: a loaded machine takes a while. */
const TEST_LIMIT_MS = 180_000;

interface Seen {
  readonly requestId: string;
  /** The record was in the file when the response arrived. */
  readonly written: boolean;
  /** It was within what the last fdatasync covered. */
  readonly synced: boolean;
}

describe.each(['always', 'batch'] as const)('KMS_AUDIT_SYNC=%s: SIGKILL under load', (policy) => {
  let dataDir: string;
  /** The service processes this test started, stopped at the end whatever happened. */
  const children: ChildProcess[] = [];
  beforeAll(() => {
    dataDir = makeDataDir();
  });
  afterAll(async () => {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const exited = exitOf(child);
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('answers no request before its record is in the chain, and the chain keeps every answered one', async () => {
    const env = processEnv(dataDir, { KMS_WORKERS: '1', KMS_LOG_LEVEL: 'info', KMS_AUDIT_SYNC: policy, AUDIT_WRITE_DELAY_MS: String(WRITE_DELAY_MS) });
    const started = spawnScript(path.join(__dirname, '..', 'helpers', 'slow-audit-disk.ts'), env);
    children.push(started.child);
    const exited = exitOf(started.child);
    await waitForOutput(started, /"msg":"KMS listening"/, 1, 60_000);
    const url = /"url":"(https?:[^"]+)"/.exec(started.output())![1]!;
    const admin = readAdminCredentials(dataDir);
    const kms = kmsClient(url, admin.project_id, { 'x-auth-token': admin.token });
    const chain = auditLogFile(dataDir);

    const seen: Seen[] = [];
    const look = (response: KmsResponse): void => {
      const requestId = response.headers.get('x-request-id')!;
      const text = readFileSync(chain, 'utf8');
      const at = text.indexOf(`"request_id":"${requestId}"`);
      const syncedLength = existsSync(`${chain}.synced`) ? Number(readFileSync(`${chain}.synced`, 'utf8')) : 0;
      seen.push({ requestId, written: at >= 0, synced: at >= 0 && text.indexOf('\n', at) < syncedLength });
    };
    const created = await kms.call('create-key', { key_alias: `durable-${policy}` });
    expect(created.status).toBe(200);
    look(created);
    const keyId: string = created.body.key_info.key_id;

    let crashed = false;
    const client = async (): Promise<void> => {
      while (!crashed) {
        let response: KmsResponse;
        try {
          response = await kms.call('create-datakey', { key_id: keyId, datakey_length: '256' });
        } catch {
          return; // the connection died with the service
        }
        if (response.status === 200) look(response);
      }
    };
    const clients = Array.from({ length: CONNECTIONS }, () => client());
    while (seen.length < ANSWERS) await new Promise((resolve) => setTimeout(resolve, 5));
    // Under load: requests are in flight, their records being written.
    started.child.kill('SIGKILL');
    crashed = true;
    await exited;
    await Promise.all(clients);

    expect(seen.filter((answer) => !answer.written)).toEqual([]);
    if (policy === 'always') expect(seen.filter((answer) => !answer.synced)).toEqual([]);
    const text = readFileSync(chain, 'utf8');
    expect(seen.filter((answer) => !text.includes(`"request_id":"${answer.requestId}"`))).toEqual([]);

    // A start moves a line the kill tore aside; then every chain verifies.
    const again = await startProcess(dataDir, { KMS_WORKERS: '1' });
    children.push(again.child);
    again.child.kill('SIGTERM');
    expect(await exitOf(again.child)).toBe(0);
    expect(verifyAuditLog(chain)).toMatchObject({ ok: true });
    const verify = await runCliOn({ KMS_DATA_DIR: dataDir }, ['audit', 'verify']);
    expect(verify).toMatchObject({ code: 0 });
  }, TEST_LIMIT_MS);
});
