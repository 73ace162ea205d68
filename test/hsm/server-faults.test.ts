import Database from 'better-sqlite3';
import path from 'node:path';
import { expectKmsError } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { startShimService, type ShimService } from '../helpers/shim-service';

/**
 * Server faults that used to hide or spread, injected under the real service by the PKCS#11 shim:
 * they are answered as the server's (500/503) and logged at error level, and one failing key does
 * not stop the work on the others.
 */
const CKR_FUNCTION_FAILED = 0x06;

let s: ShimService;

beforeAll(async () => {
  s = await startShimService({ KMS_SWEEP_INTERVAL_SECONDS: '1' });
}, 30_000);

afterAll(async () => {
  await s?.stop();
});

/** The service's log lines at error level (pino: 50). */
function errorLines(): Array<Record<string, unknown>> {
  return s
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.level === 50);
}

describe('an HSM fault while a secret key is unsealed to verify a signature', () => {
  it('is a 500 logged at error level, not the 401 of wrong credentials', async () => {
    const sdk = sdkClient({ endpoint: s.url, projectId: s.admin.project_id, ak: s.admin.access_key, sk: s.admin.secret_key });
    s.fail(CKR_FUNCTION_FAILED, 'C_Decrypt');
    expect(await sdk.call('list-keys', {})).toMatchObject({ status: 500, errorCode: 'KMS.0103' });
    expect(s.failurePending()).toBe(false);
    expect(await s.logged(/"level":50[^\n]*"code":"KMS.0103"[^\n]*"msg":"request failed"/)).toBe(true);
    expect((await sdk.call('list-keys', {})).status).toBe(200);
  });
});

describe('key maintenance when one key cannot be destroyed', () => {
  it('logs and counts that key, deletes the others in the same pass, and retries it in the next', async () => {
    const keyIds: string[] = [];
    for (const alias of ['sweep-one', 'sweep-two']) {
      const keyId: string = (await s.kms.call('create-key', { key_alias: alias })).body.key_info.key_id;
      expect((await s.kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
      keyIds.push(keyId);
    }
    // The next C_DestroyObject fails, whichever key the pass takes first.
    s.fail(CKR_FUNCTION_FAILED, 'C_DestroyObject');
    // The deletion windows end now: moved behind the service's back, as seven days passing would.
    const db = new Database(path.join(s.dataDir, 'kms.sqlite'));
    try {
      db.prepare(`UPDATE keys SET scheduled_deletion_date = ? WHERE key_id IN (?, ?)`).run(Date.now() - 1000, keyIds[0], keyIds[1]);

      expect(await s.logged(/"rolledBack":0,"deleted":1,"failed":1,"msg":"key maintenance pass left records unfinished/)).toBe(true);
      const failure = errorLines().find((line) => String(line.msg).startsWith('key maintenance failed deleting a key'));
      expect(failure).toMatchObject({ attempts: 1, keyId: expect.any(String) });
      expect(keyIds).toContain(failure!.keyId);

      // The next pass finishes the one that failed.
      for (const keyId of keyIds) expect(await s.logged(`"keyId":"${keyId}","projectId":"${s.admin.project_id}","msg":"key deleted: deletion window ended"`)).toBe(true);
      expect(db.prepare('SELECT count(*) AS n FROM keys WHERE key_id IN (?, ?)').get(keyIds[0], keyIds[1])).toEqual({ n: 0 });
    } finally {
      db.close();
    }
  });
});

describe('a key creation that fails and cannot be undone', () => {
  it('answers 500 and logs at error level what it could not undo', async () => {
    // The HSM makes the key but its answer is lost, and the rollback's destroy fails the same way.
    s.fail(CKR_FUNCTION_FAILED, 'always', 'after', 'C_GenerateKey', 'C_DestroyObject');
    try {
      const response = await s.kms.call('create-key', { key_alias: 'not-undone' });
      expectKmsError(response, 500, 'KMS.0103');
      expect(await s.logged('could not undo a failed key creation')).toBe(true);
      const undo = errorLines().find((line) => String(line.msg).startsWith('could not undo a failed key creation'));
      expect(undo).toMatchObject({ keyId: expect.stringMatching(/^[0-9a-f-]{36}$/), projectId: s.admin.project_id, requestId: response.body.request_id });
    } finally {
      s.clearFailure();
    }
  });
});
