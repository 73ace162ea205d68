/**
 * hsm/Dockerfile and docker-compose.yml: the build context leaves secrets and build output out, the
 * shim's sources are there when npm ci's postinstall builds it, and the health checks they declare
 * work (run here as Docker would run them, against the real service).
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { TestPki } from '../helpers/certificates';
import { startTestService, type TestService } from '../helpers/service';

const ROOT = path.resolve(__dirname, '..', '..');
const dockerfile = readFileSync(path.join(ROOT, 'hsm', 'Dockerfile'), 'utf8');
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: { kms: { healthcheck: { test: string[] } } } };

/** The exec-form command of the Dockerfile's HEALTHCHECK. */
function dockerfileHealthcheck(): string[] {
  const instruction = /^HEALTHCHECK [^\n]*\\\n\s*CMD (\[.*\])$/m.exec(dockerfile);
  if (!instruction) throw new Error('hsm/Dockerfile has no exec-form HEALTHCHECK');
  return JSON.parse(instruction[1]!) as string[];
}

/**
 * Runs a health check command as Docker does (exec form), with the image's PORT; its exit code.
 * Asynchronously: the service answering it runs in this process.
 */
function runCheck(command: readonly string[], port: number, env: Record<string, string> = {}): Promise<number | null> {
  const [program, ...args] = command;
  expect(program).toBe('node');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, PORT: String(port), ...env }, stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
}

describe('the Docker build context', () => {
  it('leaves out node_modules, data directories (credentials, PIN, token), .git and build output', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
    for (const entry of ['**/node_modules', 'data', '**/data', '.git', 'bench/shim/build', 'dist']) expect(ignored).toContain(entry);
  });

  it("copies the shim's sources before npm ci, whose postinstall builds it", () => {
    const lines = dockerfile.split('\n');
    const copyShim = lines.findIndex((line) => /^COPY bench\/shim /.test(line));
    const install = lines.findIndex((line) => /^RUN npm ci\b/.test(line));
    expect(copyShim).toBeGreaterThan(-1);
    expect(copyShim).toBeLessThan(install);
  });
});

describe('the health checks of the image and of docker compose', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(async () => {
    await t.stop();
  });

  it.each([
    ['hsm/Dockerfile HEALTHCHECK', () => dockerfileHealthcheck()],
    ['docker-compose.yml healthcheck', () => {
      // Exec form, as the Dockerfile's: no shell in between.
      expect(compose.services.kms.healthcheck.test[0]).toBe('CMD');
      return compose.services.kms.healthcheck.test.slice(1);
    }],
  ])('%s asks GET /readyz and passes against a ready service, fails against none', async (_which, command) => {
    const check = command();
    expect(check.join(' ')).toContain('/readyz');
    expect(await runCheck(check, t.service.port)).toBe(0);
    const port = t.service.port;
    await t.service.close();
    try {
      expect(await runCheck(check, port)).toBe(1);
    } finally {
      await t.restart();
    }
  });
});

describe('the health checks with TLS on', () => {
  const pki = new TestPki();
  const ca = pki.ca('docker-test-ca');
  const server = pki.server('docker-test-server', ca);
  const env = { KMS_TLS_CERT_FILE: server.certFile, KMS_TLS_KEY_FILE: server.keyFile, KMS_TLS_CLIENT_CA_FILE: ca.certFile };
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ env });
  });
  afterAll(async () => {
    await t.stop();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  it.each([
    ['hsm/Dockerfile HEALTHCHECK', () => dockerfileHealthcheck()],
    ['docker-compose.yml healthcheck', () => compose.services.kms.healthcheck.test.slice(1)],
  ])('%s asks over HTTPS, without a client certificate, when the container has KMS_TLS_CERT_FILE', async (_which, command) => {
    expect(await runCheck(command(), t.service.port, env)).toBe(0);
  });
});
