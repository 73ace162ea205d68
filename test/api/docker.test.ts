/**
 * hsm/Dockerfile and docker-compose.yml: the build context leaves secrets and build output out, the
 * shim's sources are there when npm ci's postinstall builds it, and the health checks they declare
 * work (run here as Docker would run them, against the real service).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config';
import { TestPki } from '../helpers/certificates';
import { useTestService } from '../helpers/service';

const ROOT = path.resolve(__dirname, '..', '..');
const dockerfile = readFileSync(path.join(ROOT, 'hsm', 'Dockerfile'), 'utf8');
interface ComposeService {
  readonly healthcheck: { readonly test: string[] };
  readonly profiles?: string[];
  readonly environment?: Record<string, string>;
  readonly volumes?: string[];
  readonly ports?: string[];
}
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> & { kms: ComposeService } };

/** The environment hsm/Dockerfile's ENV sets in the image. */
function hsmDockerfileEnv(): Record<string, string> {
  const line = /^ENV (.*)$/m.exec(dockerfile);
  if (!line) throw new Error('hsm/Dockerfile has no ENV');
  return Object.fromEntries(line[1]!.split(/\s+/).map((pair) => pair.split('=') as [string, string]));
}

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

  it('leaves out the secrets of docker compose (the database password)', () => {
    const ignored = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
    expect(ignored).toContain('secrets');
    expect(readFileSync(path.join(ROOT, '.gitignore'), 'utf8').split('\n')).toContain('secrets/');
  });

  it("copies the shim's sources before npm ci, whose postinstall builds it", () => {
    const lines = dockerfile.split('\n');
    const copyShim = lines.findIndex((line) => /^COPY bench\/shim /.test(line));
    const install = lines.findIndex((line) => /^RUN npm ci\b/.test(line));
    expect(copyShim).toBeGreaterThan(-1);
    expect(copyShim).toBeLessThan(install);
  });
});

describe("docker compose's profile `several`", () => {
  // The password file is the operator's to write (secrets/, ignored by git): one stands in for it.
  const secrets = mkdtempSync(path.join(tmpdir(), 'kms-compose-'));
  const passwordFile = path.join(secrets, 'postgres-password');
  writeFileSync(passwordFile, 'not-a-real-password\n');
  afterAll(() => rmSync(secrets, { recursive: true, force: true }));
  const instances = ['kms-a', 'kms-b'].map((name) => {
    const service = compose.services[name];
    if (!service) throw new Error(`docker-compose.yml has no service ${name}`);
    return { name, service, config: loadConfig({ ...hsmDockerfileEnv(), ...service.environment, KMS_DATABASE_PASSWORD_FILE: passwordFile }) };
  });

  it('runs two instances, and the database, only when asked for', () => {
    expect(compose.services.kms.profiles).toBeUndefined();
    for (const name of ['postgres', 'kms-a', 'kms-b']) expect(compose.services[name]?.profiles).toEqual(['several']);
  });

  it('gives them one database and one token with its lock, and each its own name, data directory and port', () => {
    const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
    expect(a.config.database).toEqual(b.config.database);
    expect(a.config.database).toMatchObject({ kind: 'postgres', url: 'postgres://kms@postgres:5432/kms' });
    expect(a.service.environment?.KMS_DATABASE_PASSWORD_FILE).toBe(b.service.environment?.KMS_DATABASE_PASSWORD_FILE);
    expect(compose.services.postgres?.environment?.POSTGRES_PASSWORD_FILE).toBe(a.service.environment?.KMS_DATABASE_PASSWORD_FILE);
    expect(a.config.hsm).toEqual(b.config.hsm);
    expect(a.config.hsmLockPath).toBe(b.config.hsmLockPath);
    expect(a.config.instanceId).not.toBe(b.config.instanceId);
    const mounts = (service: ComposeService, at: string): string | undefined => service.volumes?.find((volume) => volume.split(':')[1] === at)?.split(':')[0];
    expect(mounts(a.service, a.config.dataDir)).not.toBe(mounts(b.service, b.config.dataDir));
    expect(mounts(a.service, '/var/lib/kms-token')).toBe(mounts(b.service, '/var/lib/kms-token'));
    expect(a.service.ports).not.toEqual(b.service.ports);
    expect(a.service.healthcheck.test).toEqual(compose.services.kms.healthcheck.test);
  });
});

describe('the health checks of the image and of docker compose', () => {
  const t = useTestService();

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
  const t = useTestService({ env });
  afterAll(() => {
    rmSync(pki.dir, { recursive: true, force: true });
  });

  it.each([
    ['hsm/Dockerfile HEALTHCHECK', () => dockerfileHealthcheck()],
    ['docker-compose.yml healthcheck', () => compose.services.kms.healthcheck.test.slice(1)],
  ])('%s asks over HTTPS, without a client certificate, when the container has KMS_TLS_CERT_FILE', async (_which, command) => {
    expect(await runCheck(command(), t.service.port, env)).toBe(0);
  });
});
