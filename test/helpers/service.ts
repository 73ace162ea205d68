import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config';
import { createLogger } from '../../src/logger';
import { startService, type RunningService } from '../../src/server';
import { kmsClient, type KmsClient } from './client';
import { removeSoftHsmToken } from './softhsm-tokens';
import { freshTokenEnv, testModuleKind } from './test-module';

/** Everything the service logged, as text, so tests can check what it says and what it never says. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.lines.push(chunk.toString('utf8'));
    done();
  }
  get text(): string {
    return this.lines.join('');
  }
}

/** A clock the test moves by hand. */
export class TestClock {
  constructor(public now = Date.now()) {}
  readonly read = (): number => this.now;
  advanceDays(days: number): void {
    this.now += days * 86_400_000;
  }
}

export interface TestService {
  readonly service: RunningService;
  readonly config: Config;
  readonly logs: LogCapture;
  readonly clock: TestClock;
  readonly dataDir: string;
  /** The PKCS#11 settings of the service's token (module, label, PIN, init args), for another process on it. */
  readonly moduleEnv: Readonly<Record<string, string>>;
  /** A client of `project` authenticated by a token allowed `actions` (everything by default). */
  client(project?: string, actions?: readonly string[]): KmsClient;
  /** The X-Auth-Token of a credential of `project` allowed `actions` (made once, then reused). */
  token(project?: string, actions?: readonly string[]): Promise<string>;
  /** Closes the service and starts it again on the same data directory (and token). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A fresh data directory, so a fresh SoftHSM token and database, for one test file. */
export function makeDataDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'kms-test-'));
}

/**
 * Starts the real service on the embedded defaults (SoftHSMv2, a token made in a temporary
 * directory for this run) on a free loopback port, with responses checked against openapi.yaml.
 */
export async function startTestService(options: { env?: Record<string, string>; dataDir?: string } = {}): Promise<TestService> {
  const dataDir = options.dataDir ?? makeDataDir();
  // Tokens of all test files share the run's SoftHSM directory (global-setup.ts): one label each.
  const tokenLabel = `kms-test-${randomBytes(6).toString('hex')}`;
  // A fresh token of the run's PKCS#11 module (test-module.ts): SoftHSM by default, or NSS's softoken.
  const moduleEnv = freshTokenEnv(dataDir, tokenLabel);
  const config = loadConfig({ KMS_DATA_DIR: dataDir, PORT: '0', ...moduleEnv, ...options.env });
  const logs = new LogCapture();
  const clock = new TestClock();
  const logger = createLogger('debug', logs);
  const start = (): Promise<RunningService> => startService(config, { logger, clock: clock.read, validateResponses: true });
  let service = await start();
  // The promise is kept, not its value: calls made before the first one settles share its token.
  const tokens = new Map<string, Promise<string>>();
  const token = (project = 'project-a', actions: readonly string[] = ['kms:*']): Promise<string> => {
    const key = `${project} ${actions.join(',')}`;
    let value = tokens.get(key);
    if (!value) {
      value = service.credentials.createToken({ projectId: project, actions }).then((issued) => issued.token);
      tokens.set(key, value);
    }
    return value;
  };
  const handle: TestService = {
    get service() {
      return service;
    },
    config,
    logs,
    clock,
    dataDir,
    moduleEnv,
    token,
    client: (project = 'project-a', actions?: readonly string[]) =>
      kmsClient(() => service.url, project, async () => ({ 'x-auth-token': await token(project, actions) })),
    async restart() {
      await service.close();
      service = await start();
    },
    async stop() {
      await service.close();
      rmSync(dataDir, { recursive: true, force: true });
      // SoftHSM's token (also under the FIPS-style shim) is in the run's token directory; NSS's database was in the data directory.
      if (testModuleKind() !== 'nss' && config.hsm.tokenLabel === tokenLabel) removeSoftHsmToken(tokenLabel);
    },
  };
  return handle;
}

/**
 * A client that finds the service when it sends, for clients declared before `beforeAll` has
 * started the service (in a describe block).
 */
export function lazyClient(service: () => TestService, project = 'project-a', actions?: readonly string[]): KmsClient {
  return {
    project,
    call: (operation, body) => service().client(project, actions).call(operation, body),
    raw: (operation, init) => service().client(project, actions).raw(operation, init),
  };
}
