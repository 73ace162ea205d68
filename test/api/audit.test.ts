import { copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chainHash, cliAuditLogFile, verifyAuditLog } from '../../src/audit/audit-log';
import { runCli } from '../helpers/cli';
import { createLogger } from '../../src/logger';
import { startService, type RunningService } from '../../src/server';
import { expectKmsError, kmsClient, type KmsClient } from '../helpers/client';
import { useTestService } from '../helpers/service';

const t = useTestService();

/** A line of the chain: any of the records of src/audit/audit-records.ts, with `prev` and `hash`. */
type Line = { readonly [field: string]: unknown; readonly prev: string; readonly hash: string };

/** The audit log's lines, as the file holds them now. */
function auditLines(): Line[] {
  return readFileSync(t.config.auditLogPath, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Line);
}

/**
 * The record of one request. An operation is answered only once its record is in the file; a
 * failed authentication is answered at once, its record written with the next batch: polled for.
 */
async function byRequestId(requestId: string | null): Promise<Line> {
  let found = auditLines().filter((line) => line.request_id === requestId);
  for (let tries = 0; found.length === 0 && tries < 500; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    found = auditLines().filter((line) => line.request_id === requestId);
  }
  expect(found).toHaveLength(1);
  return found[0]!;
}

describe('the audit trail', () => {
  it('records every request that reaches an operation, successes and refusals, with who, what, which key and how it ended', async () => {
    const token = await t.token('project-a');
    const client = t.client('project-a');
    const created = await client.call('create-key', { key_alias: 'audited' });
    const keyId: string = created.body.key_info.key_id;
    const dataKey = await client.call('create-datakey', { key_id: keyId });
    const refused = await client.call('enable-key', { key_id: keyId });
    const forbidden = await t.client('project-a', ['kms:dek:*']).call('disable-key', { key_id: keyId });

    const tokenId = (await t.service.credentials.list('project-a')).find((entry) => entry.actions.join() === 'kms:*')!.id;
    expect(await byRequestId(created.headers.get('x-request-id'))).toMatchObject({
      event: 'operation',
      principal: { kind: 'token', id: tokenId },
      project_id: 'project-a',
      action: 'create-key',
      permission: 'kms:cmk:create',
      key_id: keyId,
      status: 200,
      result: 'OK',
      client: expect.stringMatching(/127\.0\.0\.1/),
      latency_ms: expect.any(Number),
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(await byRequestId(dataKey.headers.get('x-request-id'))).toMatchObject({ action: 'create-datakey', permission: 'kms:dek:create', key_id: keyId, result: 'OK' });
    expect(await byRequestId(refused.headers.get('x-request-id'))).toMatchObject({ action: 'enable-key', status: 400, result: 'KMS.1201' });
    expect(await byRequestId(forbidden.headers.get('x-request-id'))).toMatchObject({ action: 'disable-key', status: 403, result: 'KMS.0307' });

    // Never a secret: not the token, not the data key, not its ciphertext.
    const text = readFileSync(t.config.auditLogPath, 'utf8');
    for (const secret of [token, dataKey.body.plain_text, dataKey.body.cipher_text]) expect(text).not.toContain(secret);
  });

  it('names the key the operation acted on, never a key_id the body sent', async () => {
    const client = t.client('project-a');
    const a: string = (await client.call('create-key', { key_alias: 'acted-on-a' })).body.key_info.key_id;
    const b: string = (await t.client('project-b').call('create-key', { key_alias: 'acted-on-b' })).body.key_info.key_id;

    // create-key makes a new key C: the record names C, not the key A the body mentions.
    const createdC = await client.call('create-key', { key_alias: 'acted-on-c', key_id: a });
    const c: string = createdC.body.key_info.key_id;
    expect(c).not.toBe(a);
    expect(await byRequestId(createdC.headers.get('x-request-id'))).toMatchObject({ action: 'create-key', key_id: c, result: 'OK' });

    // list-keys acts on no key, whatever the body says.
    const listed = await client.call('list-keys', { key_id: b });
    expect(await byRequestId(listed.headers.get('x-request-id'))).toMatchObject({ action: 'list-keys', key_id: null, result: 'OK' });
    const forged = await client.call('list-keys', { key_id: 'forged\u0000<script>' });
    expect(forged.status).toBe(200);
    expect(await byRequestId(forged.headers.get('x-request-id'))).toMatchObject({ key_id: null });

    // Refused because the key is not in the caller's project (or nowhere): no key is named.
    const otherProjects = await client.call('describe-key', { key_id: b });
    expect(otherProjects.status).toBe(404);
    expect(await byRequestId(otherProjects.headers.get('x-request-id'))).toMatchObject({ key_id: null, result: 'KMS.0207' });
    const absent = await client.call('create-datakey', { key_id: '00000000-0000-4000-8000-000000000000' });
    expect(await byRequestId(absent.headers.get('x-request-id'))).toMatchObject({ key_id: null, result: 'KMS.0207' });

    // Refused by the key's rules once the key was found: the record names that key.
    const refused = await client.call('enable-key', { key_id: a });
    expect(await byRequestId(refused.headers.get('x-request-id'))).toMatchObject({ key_id: a, result: 'KMS.1201' });
    const dataKey = await client.call('create-datakey', { key_id: c });
    expect(await byRequestId(dataKey.headers.get('x-request-id'))).toMatchObject({ key_id: c, result: 'OK' });

    expect(readFileSync(t.config.auditLogPath, 'utf8')).not.toMatch(/forged|<script>/);
  });

  it('records failed authentications: the access key id claimed, the peer and the reason, never a token or a signature', async () => {
    const sdkDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
    const signature = 'ab'.repeat(32);
    const signed = (accessKey: string) =>
      kmsClient(t.service.url, 'project-a').raw('list-keys', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sdk-date': sdkDate, authorization: `SDK-HMAC-SHA256 Access=${accessKey}, SignedHeaders=content-type;x-sdk-date, Signature=${signature}` },
        body: '{}',
      });
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:*'] });
    const wrongToken = `kmst-${'x'.repeat(43)}`;

    const anonymous = await kmsClient(t.service.url, 'project-a').call('list-keys');
    const badToken = await kmsClient(t.service.url, 'project-a', { 'x-auth-token': wrongToken }).call('list-keys');
    const unknownKey = await signed('AKUNKNOWN0000000000X');
    const wrongSignature = await signed(issued.access_key);
    const forgedKey = await signed('<script>');
    for (const response of [anonymous, badToken, unknownKey, wrongSignature, forgedKey]) expect(response.status).toBe(401);

    const failed = { event: 'authentication-failed', count: 1, client: expect.stringMatching(/127\.0\.0\.1/), time: expect.stringMatching(/^\d{4}-/) };
    expect(await byRequestId(anonymous.headers.get('x-request-id'))).toMatchObject({ ...failed, claimed: { kind: 'none', id: null }, reason: 'no-credential' });
    expect(await byRequestId(badToken.headers.get('x-request-id'))).toMatchObject({ ...failed, claimed: { kind: 'token', id: null }, reason: 'unusable-token' });
    expect(await byRequestId(unknownKey.headers.get('x-request-id'))).toMatchObject({ ...failed, claimed: { kind: 'access-key', id: 'AKUNKNOWN0000000000X' }, reason: 'unusable-access-key' });
    expect(await byRequestId(wrongSignature.headers.get('x-request-id'))).toMatchObject({ ...failed, claimed: { kind: 'access-key', id: issued.access_key }, reason: 'signature-mismatch' });
    expect(await byRequestId(forgedKey.headers.get('x-request-id'))).toMatchObject({ ...failed, claimed: { kind: 'access-key', id: null } });

    const text = readFileSync(t.config.auditLogPath, 'utf8');
    for (const secret of [wrongToken, signature, issued.secret_key, '<script>']) expect(text).not.toContain(secret);
  });

  it('records a flood of identical failures as a count, not a line each', async () => {
    const flood = 200;
    const before = auditLines().length;
    const client = kmsClient(t.service.url, 'project-a', { 'x-auth-token': 'kmst-flood' });
    for (let sent = 0; sent < flood; sent += 20) {
      const answers = await Promise.all(Array.from({ length: 20 }, () => client.call('list-keys')));
      expect(answers.every((answer) => answer.status === 401)).toBe(true);
    }
    await t.restart(); // stopping writes the counts of the window under way
    const records = auditLines().slice(before).filter((line) => line.event === 'authentication-failed');
    // At most a line at the first failure of a window (with its request id), and one with the
    // count of the others when the window ends: a few lines, whatever the machine's speed.
    expect(records.length).toBeLessThanOrEqual(10);
    expect(records.every((line) => line.reason === 'unusable-token' && line.claimed !== undefined)).toBe(true);
    expect(records.reduce((total, line) => total + Number(line.count), 0)).toBe(flood);
    expect(records[records.length - 1]).toMatchObject({ request_id: null, count: expect.any(Number), until: expect.any(String) });
  });

  it("records the first start's admin credential in audit-cli.log: made by the service at its first start, its ids, never its secret or token", () => {
    const admin = JSON.parse(readFileSync(t.config.adminCredentialsPath, 'utf8')) as { project_id: string; access_key: string; secret_key: string; token: string; token_id: string };
    const file = cliAuditLogFile(t.dataDir);
    const text = readFileSync(file, 'utf8');
    const made = { event: 'credential-change', action: 'create', result: 'OK', source: 'first-start', operator: { user: expect.any(String), pid: expect.any(Number) } };
    const credential = { project_id: admin.project_id, actions: ['kms:*'], expires_at: null };
    expect(text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Line)).toEqual([
      expect.objectContaining({ ...made, credential: { id: admin.access_key, kind: 'aksk', ...credential } }),
      expect.objectContaining({ ...made, credential: { id: admin.token_id, kind: 'token', ...credential } }),
    ]);
    expect(text).not.toContain(admin.secret_key);
    expect(text).not.toContain(admin.token);
    expect(verifyAuditLog(file)).toMatchObject({ ok: true, records: 2 });
  });

  it('chains every record to the one before, across restarts', async () => {
    const before = auditLines();
    await t.restart();
    await t.client('project-a').call('list-keys');
    const after = auditLines();
    expect(after.length).toBe(before.length + 1);
    expect(after[after.length - 1]!.prev).toBe(before[before.length - 1]!.hash);
    expect(verifyAuditLog(t.config.auditLogPath)).toEqual({ ok: true, records: after.length, head: after[after.length - 1]!.hash });
  });

  describe('npm run kms -- audit verify', () => {
    function tamperedCopy(change: (lines: string[]) => string[]): string {
      const file = path.join(t.dataDir, `audit-copy-${Math.random().toString(16).slice(2)}.log`);
      copyFileSync(t.config.auditLogPath, file);
      const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
      writeFileSync(file, `${change(lines).join('\n')}\n`);
      return file;
    }

    it('passes the log as written', async () => {
      const result = await runCli(t, ['audit', 'verify']);
      expect(result.code).toBe(0);
      // audit.log, and audit-cli.log with the first start's admin credential.
      expect(JSON.parse(result.stdout)).toMatchObject({ ok: true, records: auditLines().length + 2 });
    });

    it('catches an edited line', async () => {
      const file = tamperedCopy((lines) => lines.map((line, i) => (i === 1 ? line.replace('"status":200', '"status":201') : line)));
      const result = await runCli(t, ['audit', 'verify', '--file', file]);
      expect(result.code).toBe(1);
      expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, line: 2, reason: expect.stringContaining('edited') });
    });

    it('catches a deleted line', async () => {
      const file = tamperedCopy((lines) => lines.filter((_, i) => i !== 2));
      const result = await runCli(t, ['audit', 'verify', '--file', file]);
      expect(result.code).toBe(1);
      expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, line: 3, reason: expect.stringContaining('removed') });
    });

    it('catches a line whose hash was recomputed after an edit (the next line no longer follows)', async () => {
      const file = tamperedCopy((lines) => {
        const record = JSON.parse(lines[0]!) as Record<string, unknown>;
        record.result = 'KMS.9999';
        delete record.hash;
        const rest = record;
        const rewritten = JSON.stringify({ ...rest, hash: chainHash(rest.prev as string, JSON.stringify(rest)) });
        return [rewritten, ...lines.slice(1)];
      });
      expect(verifyAuditLog(file)).toMatchObject({ ok: false, line: 2 });
    });

    it("checks every chain of the data directory (a cluster worker's audit-<n>.log too) and fails if one is broken", async () => {
      const second = path.join(t.dataDir, 'audit-1.log');
      copyFileSync(t.config.auditLogPath, second);
      try {
        const records = verifyAuditLog(t.config.auditLogPath).records;
        const cli = cliAuditLogFile(t.dataDir);
        const whole = await runCli(t, ['audit', 'verify']);
        expect(whole.code).toBe(0);
        expect(JSON.parse(whole.stdout)).toMatchObject({
          ok: true,
          records: 2 * records + verifyAuditLog(cli).records,
          files: [{ file: second, ok: true }, { file: cli, ok: true }, { file: t.config.auditLogPath, ok: true }],
        });

        const lines = readFileSync(second, 'utf8').split('\n').filter(Boolean);
        writeFileSync(second, `${lines.filter((_, i) => i !== 1).join('\n')}\n`);
        const broken = await runCli(t, ['audit', 'verify']);
        expect(broken.code).toBe(1);
        expect(JSON.parse(broken.stdout)).toMatchObject({ ok: false, files: [{ file: second, ok: false, line: 2 }, { file: cli, ok: true }, { file: t.config.auditLogPath, ok: true }] });
      } finally {
        rmSync(second, { force: true });
      }
    });
  });
});

describe('when the audit log cannot be written', () => {
  /** The service with its chain on /dev/full, which takes the file open and refuses every write (ENOSPC), as a full disk does. */
  async function onAFullDisk(): Promise<{ service: RunningService; client: KmsClient }> {
    await t.service.close();
    const service = await startService(t.config, { logger: createLogger('debug', t.logs), clock: t.clock.read, validateResponses: true, auditLogPath: '/dev/full' });
    const client = kmsClient(service.url, 'project-a', { 'x-auth-token': (await service.credentials.createToken({ projectId: 'project-a', actions: ['kms:*'] })).token });
    return { service, client };
  }

  it('answers 503 KMS.0104 to an operation whose record could not be made durable, then refuses operations before they run', async () => {
    const { service, client } = await onAFullDisk();
    try {
      // The first operation runs (no write has failed yet), but its record cannot be written: its 200 is not sent.
      expectKmsError(await client.call('create-key', { key_alias: 'before-the-disk-filled' }), 503, 'KMS.0104');
      expect(t.logs.text).toContain('so the answer 200 became 503 KMS.0104');
      // It was done: its record waits in memory for a write that succeeds.
      const made = (await service.store.keys.getByAlias('project-a', 'before-the-disk-filled'))!;
      expect(made).toBeDefined();

      expectKmsError(await client.call('create-key', { key_alias: 'after-the-disk-filled' }), 503, 'KMS.0104');
      expectKmsError(await client.call('schedule-key-deletion', { key_id: made.keyId, pending_days: '7' }), 503, 'KMS.0104');
      expect(await service.store.keys.getByAlias('project-a', 'after-the-disk-filled')).toBeUndefined();
      expect(await service.store.keys.get('project-a', made.keyId)).toMatchObject({ state: '2', scheduledDeletionDate: null });
      expect(t.logs.text).toContain('the audit log cannot be written');
    } finally {
      // Its records were never written: closing says so.
      await expect(service.close()).rejects.toThrow('could not be written');
    }
    await t.restart();
  });

  it('answers 503 KMS.0104 to an error too, and logs the error it would have been', async () => {
    const { service, client } = await onAFullDisk();
    try {
      const absent = await client.call('describe-key', { key_id: '5a1b3c4d-0000-4000-8000-000000000000' });
      expectKmsError(absent, 503, 'KMS.0104');
      const logged = t.logs.text.split('\n').find((line) => line.includes(absent.headers.get('x-request-id')!) && line.includes('"request failed"'));
      expect(logged).toContain('so the answer 404 KMS.0207 became 503 KMS.0104');
      expect(logged).toContain('"code":"KMS.0207"');
    } finally {
      await expect(service.close()).rejects.toThrow('could not be written');
    }
    await t.restart();
  });
});

describe('after a crash in the middle of an audit write', () => {
  it('moves the incomplete last line aside and goes on from the last whole record', async () => {
    await t.service.close();
    const file = t.config.auditLogPath;
    const records = verifyAuditLog(file).records;
    writeFileSync(file, `${readFileSync(file, 'utf8')}{"time":"2026-11-25T00:00:00.000Z","request_id":"cut-off-in-the-mid`);
    await t.restart(); // the service is closed already: this starts it again on the same data directory
    await t.client('project-a').call('list-keys');
    await new Promise((resolve) => setImmediate(resolve));
    expect(verifyAuditLog(file)).toMatchObject({ ok: true, records: records + 1 });
    expect(readdirSync(t.dataDir).filter((name) => name.startsWith('audit.log.partial-'))).toHaveLength(1);
  });
});
