import { copyFileSync, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request, type RequestOptions } from 'node:https';
import path from 'node:path';
import { connect, type ConnectionOptions, type SecureVersion, type TLSSocket } from 'node:tls';
import { startService } from '../../src/server';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/logger';
import { TestPki, type Issued } from '../helpers/certificates';
import { sdkClient } from '../helpers/sdk-client';
import { LogCapture, makeDataDir, startTestService, useTestService } from '../helpers/service';
import { exitOf, readAdminCredentials, runUntilExit, processEnv, startServiceProcess, waitForOutput, type ServiceProcess } from '../helpers/service-process';
import { freshTokenEnv } from '../helpers/test-module';

/**
 * HTTPS from the certificate and key files (node:https), the official Node SDK core over it with a
 * CA file, the protocol floor, client certificates (mTLS) as a second factor before the signature,
 * and the certificate reloaded on SIGHUP in a running process.
 */

const pki = new TestPki();
const serverCa = pki.ca('kms-test-server-ca');
const serverCert = pki.server('kms-server-1', serverCa);
const serverCertNext = pki.server('kms-server-2', serverCa);
const clientCa = pki.ca('kms-test-client-ca');
const trustedClient = pki.client('trusted-client', clientCa);
const untrustedCa = pki.ca('kms-test-untrusted-ca');
const untrustedClient = pki.client('untrusted-client', untrustedCa);

afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));

/** Longer than a start of the service's processes plus waitForOutput's own limit (30 s), so that its message is the failure. */
const PROCESS_TEST_MS = 90_000;

function tlsEnv(cert: Issued, extra: Record<string, string> = {}): Record<string, string> {
  return { KMS_TLS_CERT_FILE: cert.certFile, KMS_TLS_KEY_FILE: cert.keyFile, ...extra };
}

/** An agent that trusts the test server CA only, with a client certificate when given. */
function agentFor(client?: Issued): Agent {
  return new Agent({ ca: serverCa.cert, ...(client ? { cert: client.cert, key: client.key } : {}) });
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

function get(url: string, options: RequestOptions): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = request(url, options, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : undefined }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** The handshake alone: the certificate the server presents, or the handshake's error. */
function handshake(url: string, options: ConnectionOptions = {}): Promise<{ fingerprint256: string; protocol: string | null }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: serverCa.cert, ...options }, () => {
      const result = { fingerprint256: socket.getPeerCertificate().fingerprint256, protocol: socket.getProtocol() };
      socket.end();
      resolve(result);
    });
    socket.once('error', reject);
  });
}

/** What a client sees when the server refuses the version it offers. */
const PROTOCOL_VERSION_ALERT = 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION';

/** A client that offers only `version` (OpenSSL's security level lowered so that TLS 1.1 is offered at all). */
function onlyVersion(version: SecureVersion): ConnectionOptions {
  return { minVersion: version, maxVersion: version, ciphers: 'DEFAULT@SECLEVEL=0' };
}

describe('HTTPS', () => {
  const t = useTestService({ env: tlsEnv(serverCert) });
  let credential: { ak: string; sk: string };
  beforeAll(async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:*'] });
    credential = { ak: issued.access_key, sk: issued.secret_key };
  });

  it('serves the official Node SDK core over HTTPS with the CA file, and logs an https URL with the certificate', async () => {
    expect(t.service.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-a', ...credential, httpsAgent: agentFor() });
    const created = await sdk.call('create-key', { key_alias: 'over-tls' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;
    const dataKey = await sdk.call('create-datakey', { key_id: keyId, datakey_length: '256' });
    expect(dataKey.status).toBe(200);
    const opened = await sdk.call('decrypt-datakey', { key_id: keyId, cipher_text: dataKey.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.body.data_key).toBe(dataKey.body.plain_text);

    const listening = t.logs.lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((line) => line.msg === 'KMS listening');
    expect(listening).toMatchObject({
      url: t.service.url,
      certificate: { subject: 'CN=kms-server-1', fingerprint256: serverCert.fingerprint256 },
      clientCertificates: 'off',
    });
  });

  it('is refused by a client that does not trust the certificate', async () => {
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-a', ...credential, httpsAgent: new Agent() });
    await expect(sdk.call('list-keys', {})).rejects.toThrow(/self-signed certificate|unable to (get|verify)/i);
  });

  it('refuses TLS 1.1 and serves TLS 1.2 and 1.3', async () => {
    // The server's protocol_version alert: the client did offer TLS 1.1, the server refused it.
    await expect(handshake(t.service.url, onlyVersion('TLSv1.1'))).rejects.toMatchObject({ code: PROTOCOL_VERSION_ALERT });
    expect((await handshake(t.service.url, onlyVersion('TLSv1.2'))).protocol).toBe('TLSv1.2');
    expect((await handshake(t.service.url)).protocol).toBe('TLSv1.3');
  });
});

describe('KMS_TLS_MIN_VERSION=TLSv1.3', () => {
  it('refuses TLS 1.2', async () => {
    const t = await startTestService({ env: tlsEnv(serverCert, { KMS_TLS_MIN_VERSION: 'TLSv1.3' }) });
    try {
      await expect(handshake(t.service.url, onlyVersion('TLSv1.2'))).rejects.toMatchObject({ code: PROTOCOL_VERSION_ALERT });
      expect((await handshake(t.service.url)).protocol).toBe('TLSv1.3');
    } finally {
      await t.stop();
    }
  });
});

describe('client certificates (mTLS)', () => {
  const t = useTestService({ env: tlsEnv(serverCert, { KMS_TLS_CLIENT_CA_FILE: clientCa.certFile }) });
  let credential: { ak: string; sk: string };
  beforeAll(async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:*'] });
    credential = { ak: issued.access_key, sk: issued.secret_key };
  });

  const sdk = (client?: Issued): ReturnType<typeof sdkClient> =>
    sdkClient({ endpoint: t.service.url, projectId: 'project-a', ...credential, httpsAgent: agentFor(client) });

  /**
   * The audit chain's authentication failures, once the one of `requestId` is among them: a 401 is
   * answered at once, its record written with the audit log's next batch (polled for).
   */
  async function authFailures(requestId: string | undefined): Promise<Array<Record<string, unknown>>> {
    const read = (): Array<Record<string, unknown>> =>
      readFileSync(t.config.auditLogPath, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.event === 'authentication-failed');
    for (let tries = 0; tries < 500 && !read().some((line) => line.request_id === requestId); tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    return read();
  }

  it('serves a signed request over a connection with a trusted client certificate', async () => {
    const listed = await sdk(trustedClient).call('list-keys', {});
    expect(listed.status).toBe(200);
  });

  it('answers a signed request without a client certificate with 401 and the API error body, and audits it', async () => {
    const refused = await sdk().call('list-keys', {});
    expect(refused).toMatchObject({ status: 401, errorCode: 'APIGW.0301', errorMsg: 'Incorrect IAM authentication information. Client certificate required.' });
    expect(await authFailures(refused.requestId)).toContainEqual(
      expect.objectContaining({ request_id: refused.requestId, reason: 'client-certificate-missing', claimed: { kind: 'access-key', id: credential.ak } }),
    );
    // The whole body, as every other error of the API (checked against openapi.yaml by the test service).
    const raw = await get(`${t.service.url}/v1.0/project-a/kms/list-keys`, { method: 'GET', agent: agentFor(), headers: { 'x-auth-token': await t.token() } });
    expect(raw).toEqual({
      status: 401,
      body: {
        error: { error_code: 'APIGW.0301', error_msg: 'Incorrect IAM authentication information. Client certificate required.' },
        error_code: 'APIGW.0301',
        error_msg: 'Incorrect IAM authentication information. Client certificate required.',
        request_id: expect.any(String),
      },
    });
  });

  it('answers 401 without a client certificate on a resumed TLS session too', async () => {
    // One agent without a certificate, a new connection per request: the second resumes the first's
    // TLS 1.3 session, on which Node reports the connection authorised although no certificate came.
    const agent = new Agent({ ca: serverCa.cert, keepAlive: false, maxVersion: 'TLSv1.3', minVersion: 'TLSv1.3' });
    const answers: Array<Answer & { reused: boolean }> = [];
    const token = await t.token();
    for (let i = 0; i < 3; i++) {
      answers.push(
        await new Promise((resolve, reject) => {
          const outgoing = request(`${t.service.url}/v1.0/project-a/kms/list-keys`, { method: 'POST', agent, headers: { 'x-auth-token': token, 'content-type': 'application/json' } }, (response) => {
            let text = '';
            response.on('data', (chunk: Buffer) => (text += chunk.toString()));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as unknown, reused: (response.socket as TLSSocket).isSessionReused() }));
          });
          outgoing.on('error', reject);
          outgoing.end('{}');
        }),
      );
    }
    expect(answers.map((answer) => answer.reused)).toEqual([false, true, true]);
    for (const answer of answers) expect(answer).toMatchObject({ status: 401, body: { error_code: 'APIGW.0301', error_msg: 'Incorrect IAM authentication information. Client certificate required.' } });
  });

  it('refuses a client certificate of an untrusted CA the same way, saying no more than that', async () => {
    const refused = await sdk(untrustedClient).call('list-keys', {});
    expect(refused).toMatchObject({ status: 401, errorCode: 'APIGW.0301', errorMsg: 'Incorrect IAM authentication information. Client certificate not trusted.' });
    expect(await authFailures(refused.requestId)).toContainEqual(expect.objectContaining({ request_id: refused.requestId, reason: 'client-certificate-untrusted' }));
  });

  it('still answers the health probes without a client certificate', async () => {
    expect(await get(`${t.service.url}/healthz`, { agent: agentFor() })).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await get(`${t.service.url}/readyz`, { agent: agentFor() })).toMatchObject({ status: 200, body: { status: 'ready' } });
  });
});

describe('start-up with TLS files that cannot be served', () => {
  const dataDir = makeDataDir();
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const garbage = path.join(pki.dir, 'garbage.pem');
  writeFileSync(garbage, 'not a PEM file\n');

  const startWith = (env: Record<string, string>): Promise<unknown> =>
    startService(loadConfig({ KMS_DATA_DIR: dataDir, PORT: '0', ...freshTokenEnv(dataDir, 'kms-tls-bad'), ...env }), { logger: createLogger('silent', new LogCapture()) });

  it.each([
    ['a missing certificate', { KMS_TLS_CERT_FILE: path.join(pki.dir, 'missing.pem'), KMS_TLS_KEY_FILE: serverCert.keyFile }, /^KMS_TLS_CERT_FILE cannot be read: .*missing\.pem \(ENOENT\)$/],
    ['a key that is not PEM', { KMS_TLS_CERT_FILE: serverCert.certFile, KMS_TLS_KEY_FILE: garbage }, /^KMS_TLS_KEY_FILE holds no PEM private key: /],
    ['the key of another certificate', tlsEnv({ ...serverCert, keyFile: serverCertNext.keyFile }), /^KMS_TLS_KEY_FILE is not the key of the certificate in KMS_TLS_CERT_FILE: /],
    ['a client CA file without a certificate', tlsEnv(serverCert, { KMS_TLS_CLIENT_CA_FILE: garbage }), /^KMS_TLS_CLIENT_CA_FILE holds no PEM certificate: /],
  ])('refuses %s, before the data directory is touched', async (_case, env, message) => {
    await expect(startWith(env)).rejects.toMatchObject({ name: 'StartError', message: expect.stringMatching(message) });
    expect(existsSync(path.join(dataDir, 'kms.sqlite'))).toBe(false);
  });

  it('prints one line', async () => {
    const env = processEnv(dataDir, { KMS_WORKERS: '1', ...tlsEnv({ ...serverCert, certFile: path.join(pki.dir, 'missing.pem') }) });
    const { code, output } = await runUntilExit(env);
    expect(code).toBe(1);
    expect(output).toMatch(/^kms: KMS_TLS_CERT_FILE cannot be read: .*\(ENOENT\)\n$/);
  });
});

describe('plain HTTP', () => {
  it('warns at start when it listens beyond loopback, not on loopback', async () => {
    const everywhere = await startTestService({ env: { KMS_HOST: '0.0.0.0' } });
    const loopback = await startTestService();
    try {
      expect(everywhere.logs.text).toMatch(/"level":40,.*"msg":"serving plain HTTP beyond loopback/);
      expect(loopback.logs.text).not.toMatch(/plain HTTP beyond loopback/);
      expect(loopback.service.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    } finally {
      await everywhere.stop();
      await loopback.stop();
    }
  });
});

describe('SIGHUP reloads the certificate', () => {
  const dirs: string[] = [];
  const running: ServiceProcess[] = [];
  afterAll(async () => {
    for (const started of running) if (started.child.exitCode === null) await started.crash();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** The service's certificate and key files, in a directory of their own, replaced as an operator (or certbot) does. */
  function servedFiles(first: Issued): { dir: string; install(next: Issued): void; env: Record<string, string> } {
    const dir = makeDataDir();
    dirs.push(dir);
    const certFile = path.join(dir, 'tls.crt');
    const keyFile = path.join(dir, 'tls.key');
    const install = (next: Issued): void => {
      // Each file replaced at once (a rename), never read half-written.
      copyFileSync(next.keyFile, `${keyFile}.new`);
      renameSync(`${keyFile}.new`, keyFile);
      copyFileSync(next.certFile, `${certFile}.new`);
      renameSync(`${certFile}.new`, certFile);
    };
    install(first);
    return { dir, install, env: { KMS_TLS_CERT_FILE: certFile, KMS_TLS_KEY_FILE: keyFile } };
  }

  it('serves the new certificate to new connections, finishes a request in flight, and keeps the old one when the new file is broken', async () => {
    const files = servedFiles(serverCert);
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const started = await startServiceProcess(dataDir, { KMS_WORKERS: '1', ...files.env });
    running.push(started);
    expect(started.url).toMatch(/^https:/);
    expect((await handshake(started.url)).fingerprint256).toBe(serverCert.fingerprint256);

    // A request in flight across the reload: its headers and half its body sent before, the rest after.
    const admin = readAdminCredentials(dataDir);
    const body = JSON.stringify({ key_alias: 'made-across-a-reload' });
    let answered: (answer: Answer) => void = () => undefined;
    const answer = new Promise<Answer>((resolve) => (answered = resolve));
    const inFlight = request(`${started.url}/v1.0/${admin.project_id}/kms/create-key`, {
      method: 'POST',
      agent: agentFor(),
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-auth-token': admin.token },
    }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => answered({ status: response.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    inFlight.on('error', (error) => answered({ status: -1, body: error.message }));
    inFlight.write(body.slice(0, 10));
    const inFlightSocket = await new Promise<TLSSocket>((resolve) => inFlight.once('socket', (socket) => socket.once('secureConnect', () => resolve(socket as TLSSocket))));
    expect(inFlightSocket.getPeerCertificate().fingerprint256).toBe(serverCert.fingerprint256);

    files.install(serverCertNext);
    started.child.kill('SIGHUP');
    await waitForOutput(started, /"msg":"TLS certificate reloaded"/);
    expect(started.output()).toMatch(new RegExp(`"subject":"CN=kms-server-2".*"fingerprint256":"${serverCertNext.fingerprint256}"`));
    inFlight.end(body.slice(10));
    expect(await answer).toMatchObject({ status: 200, body: { key_info: { key_id: expect.any(String) } } });
    expect((await handshake(started.url)).fingerprint256).toBe(serverCertNext.fingerprint256);

    // A broken certificate file: the error is logged, the process stays, the previous certificate is served.
    writeFileSync(files.env.KMS_TLS_CERT_FILE!, '-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n');
    started.child.kill('SIGHUP');
    await waitForOutput(started, /"msg":"TLS reload failed; still serving the previous certificate"/);
    expect(started.child.exitCode).toBeNull();
    expect((await handshake(started.url)).fingerprint256).toBe(serverCertNext.fingerprint256);
    // No key material in the logs, whatever happened.
    for (const issued of [serverCert, serverCertNext]) {
      const keyBody = issued.key.toString().split('\n').slice(1, -2).join('');
      expect(started.output()).not.toContain(keyBody.slice(0, 40));
    }
    expect(await started.stop()).toBe(0);
  }, PROCESS_TEST_MS);

  it('reaches every worker of a cluster', async () => {
    const files = servedFiles(serverCert);
    const dataDir = makeDataDir();
    dirs.push(dataDir);
    const started = await startServiceProcess(dataDir, { KMS_WORKERS: '2', ...files.env });
    running.push(started);
    files.install(serverCertNext);
    started.child.kill('SIGHUP');
    await waitForOutput(started, /"msg":"TLS certificate reloaded"/, 2);
    const workers = new Set(
      started
        .output()
        .split('\n')
        .filter((line) => line.includes('"msg":"TLS certificate reloaded"'))
        .map((line) => (JSON.parse(line) as { worker: number }).worker),
    );
    expect(workers).toEqual(new Set([0, 1]));
    // The primary hands connections to the workers in turn: every one presents the new certificate.
    const presented = await Promise.all(Array.from({ length: 4 }, () => handshake(started.url)));
    expect(new Set(presented.map((seen) => seen.fingerprint256))).toEqual(new Set([serverCertNext.fingerprint256]));
    const exited = exitOf(started.child);
    started.child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, PROCESS_TEST_MS);
});
