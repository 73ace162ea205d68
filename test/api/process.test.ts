import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { expectKmsError, kmsClient } from '../helpers/client';
import { makeDataDir } from '../helpers/service';
import {
  exitOf,
  postAlone,
  readAdminCredentials,
  runUntilExit,
  startProcess,
  type AdminCredentials,
  workersThatServed,
  type Started,
} from '../helpers/service-process';
import { auditLogFiles, verifyAuditLog } from '../../src/audit/audit-log';

/** POSTs over a keep-alive agent, so that requests travel on connections the server already accepted. */
function post(agent: Agent, url: string, admin: AdminCredentials, operation: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/json', 'x-auth-token': admin.token };
    const outgoing = request(`${url}/v1.0/${admin.project_id}/kms/${operation}`, { method: 'POST', agent, headers }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    outgoing.on('error', reject);
    outgoing.end(JSON.stringify(body));
  });
}

describe('the service process on its embedded defaults', () => {
  const dataDir = makeDataDir();
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('creates its token and database on first start, finishes requests in flight on SIGTERM, and keeps everything for the next start', async () => {
    // One process here (the cluster has a test of its own below).
    const first = await startProcess(dataDir, { KMS_WORKERS: '1' });
    // The first start made an admin credential of the default project, readable by its owner only.
    const admin = readAdminCredentials(dataDir);
    expect(admin).toMatchObject({ project_id: 'default', access_key: expect.stringMatching(/^[A-Z0-9]{20}$/) });
    const kms = kmsClient(first.url, admin.project_id, { 'x-auth-token': admin.token });
    expectKmsError(await kmsClient(first.url, admin.project_id).call('list-keys'), 401, 'APIGW.0301');
    const keyId = (await kms.call('create-key', { key_alias: 'process' })).body.key_info.key_id;
    const dataKey = (await kms.call('create-datakey', { key_id: keyId })).body;

    // The token and its PIN live under the data directory; the PIN file is the owner's alone.
    expect(readdirSync(path.join(dataDir, 'softhsm', 'tokens'))).toHaveLength(1);
    expect(statSync(path.join(dataDir, 'softhsm', 'user.pin')).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(dataDir, 'kms.sqlite')).isFile()).toBe(true);

    // Twenty open connections; then twenty requests on them, and SIGTERM while they are in flight.
    // (A connection the server has not accepted yet is refused once it stops listening, as it should be.)
    const agent = new Agent({ keepAlive: true, maxSockets: 20 });
    const send = () => Promise.all(Array.from({ length: 20 }, () => post(agent, first.url, admin, 'create-datakey', { key_id: keyId })));
    expect(await send()).toEqual(Array(20).fill(200));
    const inFlight = send();
    const exited = exitOf(first.child);
    first.child.kill('SIGTERM');
    expect(await inFlight).toEqual(Array(20).fill(200));
    agent.destroy();
    expect(await exited).toBe(0);
    expect(first.output()).toContain('KMS stopped');

    const second = await startProcess(dataDir, { KMS_WORKERS: '1' });
    const opened = await kmsClient(second.url, admin.project_id, { 'x-auth-token': admin.token }).call('decrypt-datakey', {
      key_id: keyId,
      cipher_text: dataKey.cipher_text,
      datakey_cipher_length: '32',
    });
    expect(opened.body.data_key).toBe(dataKey.plain_text);
    const exitedAgain = exitOf(second.child);
    second.child.kill('SIGINT');
    expect(await exitedAgain).toBe(0);

    // Neither the PIN nor a data key ever reached the log.
    const pin = readFileSync(path.join(dataDir, 'softhsm', 'user.pin'), 'utf8').trim();
    const logs = first.output() + second.output();
    for (const secret of [pin, dataKey.plain_text, admin.secret_key, admin.token]) expect(logs).not.toContain(secret);
    // The second start found the credential and made no new one.
    expect(readAdminCredentials(dataDir)).toEqual(admin);
  });

  it('refuses to start, with a clear message, when the configured module cannot be loaded', async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      KMS_DATA_DIR: dataDir,
      PORT: '0',
      KMS_PKCS11_MODULE: '/nonexistent/libpkcs11.so',
      KMS_PKCS11_PIN: 'do-not-print-this-pin',
    };
    const { code, output } = await runUntilExit(env);
    expect(code).toBe(1);
    expect(output).toContain('cannot load PKCS#11 module /nonexistent/libpkcs11.so');
    expect(output).not.toContain('do-not-print-this-pin');
  });

  it('with KMS_WORKERS=2, stops with exit code 1 when its workers cannot start (port taken), rather than restarting them for ever', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    const clusterDir = makeDataDir();
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, KMS_DATA_DIR: clusterDir, PORT: String((taken.address() as AddressInfo).port), KMS_WORKERS: '2' };
      delete env.SOFTHSM2_CONF;
      const { code, output } = await runUntilExit(env);
      expect(code).toBe(1);
      expect(output).toContain('worker failed to start');
      expect(output).toContain('EADDRINUSE');
    } finally {
      taken.close();
      rmSync(clusterDir, { recursive: true, force: true });
    }
  });

  it('with KMS_WORKERS=2, serves from both workers: keys, data keys, state changes, an audit chain each', async () => {
    const clusterDir = makeDataDir();
    let started: Started | undefined;
    try {
      started = await startProcess(clusterDir, { KMS_WORKERS: '2' });
      const admin = readAdminCredentials(clusterDir);
      const { url } = started;
      const call = (operation: string, body: unknown) => postAlone(url, admin, operation, body);
      const id = (await call('create-key', { key_alias: 'cluster' })).body.key_info!.key_id;

      // Every request on a connection of its own: a key made by one worker, used by both.
      const created = await Promise.all(Array.from({ length: 12 }, () => call('create-datakey', { key_id: id })));
      expect(created.map((r) => r.status)).toEqual(Array(12).fill(200));
      const opened = await Promise.all(
        created.map((r) => call('decrypt-datakey', { key_id: id, cipher_text: r.body.cipher_text, datakey_cipher_length: '32' })),
      );
      expect(opened.map((r) => r.body.data_key)).toEqual(created.map((r) => r.body.plain_text));

      // A key disabled through one worker is refused by both at once.
      expect((await call('disable-key', { key_id: id })).status).toBe(200);
      const refused = await Promise.all(Array.from({ length: 8 }, () => call('create-datakey', { key_id: id })));
      expect(refused.map((r) => [r.status, r.body.error_code])).toEqual(Array(8).fill([400, 'KMS.0209']));

      // Both workers answered (each access log line names the worker that wrote it).
      expect(workersThatServed(started).size).toBe(2);

      const exited = exitOf(started.child);
      started.child.kill('SIGTERM');
      expect(await exited).toBe(0);
      // One chain per worker, whole, and every operation in one of them: 1 + 12 + 12 + 1 + 8; and
      // audit-cli.log, where the initialiser recorded the admin credential it made (key and token).
      const chains = auditLogFiles(clusterDir);
      expect(chains.map((file) => path.basename(file))).toEqual(['audit-0.log', 'audit-1.log', 'audit-cli.log']);
      expect(verifyAuditLog(chains.pop()!)).toMatchObject({ ok: true, records: 2 });
      const verdicts = chains.map((file) => verifyAuditLog(file));
      expect(verdicts.every((verdict) => verdict.ok && verdict.records > 0)).toBe(true);
      expect(verdicts.reduce((total, verdict) => total + verdict.records, 0)).toBe(34);
    } finally {
      if (started?.child.exitCode === null) started.child.kill('SIGTERM');
      rmSync(clusterDir, { recursive: true, force: true });
    }
  });
});
