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

/** What a test service is started with: settings over the defaults, and a data directory to reuse. */
export interface TestServiceOptions {
  /** Environment settings (KMS_...) over the test defaults. */
  readonly env?: Record<string, string>;
  /** A data directory to start on instead of a fresh one. */
  readonly dataDir?: string;
}

/**
 * Starts the real service on the embedded defaults (SoftHSMv2, a token made in a temporary
 * directory for this run) on a free loopback port, with responses checked against openapi.yaml.
 */
export async function startTestService(options: TestServiceOptions = {}): Promise<TestService> {
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

/**
 * One test service for the suite (or the describe block) that calls it: started in a beforeAll,
 * stopped in an afterAll, both registered where the call stands, so they run in that scope and in
 * that order among the suite's other hooks. Jest runs a scope's afterAll hooks in the order they
 * are declared: what must close before the service stops (a second store on its database) closes
 * in an afterAll declared before the call.
 *
 * It returns a TestService that stands for the running one rather than a getter (as
 * usePostgresCluster's), so that a suite's uses stay as they were: `t.client(...)`, `t.logs`,
 * `t.service.url`, `runCli(t, ...)`. Each member is read from the running service when used (so
 * `t.service` after `t.restart()` is the new one, as before); using one before the start throws.
 * `t.client(project)` may be called where the suite declares its clients, before the start: the
 * client finds the service when it sends (lazyClient), so `const kms = t.client('project-a')` at
 * the top level replaces `let kms` and its assignment in beforeAll.
 *
 * `options` are startTestService's, or a function giving them, called in the beforeAll, for
 * settings known only then (a file or database made by an earlier hook, or made first in it).
 * `timeout` is the beforeAll's, for a start that waits on more than the service.
 *
 * The afterAll stops the service whatever happened after its start (a later beforeAll or a test
 * that failed: Jest runs afterAll hooks regardless), and also when the start itself outlasted the
 * beforeAll's timeout: it waits for that start to finish and stops what it started.
 */
export function useTestService(
  options: TestServiceOptions | (() => TestServiceOptions | Promise<TestServiceOptions>) = {},
  timeout?: number,
): TestService {
  let starting: Promise<TestService> | undefined;
  let running: TestService | undefined;
  let stopped = false;
  const current = (): TestService => {
    if (!running) throw new Error('the test service is not started (useTestService starts it in beforeAll)');
    return running;
  };
  beforeAll(async () => {
    starting = (async () => startTestService(typeof options === 'function' ? await options() : options))();
    running = await starting;
  }, timeout);
  afterAll(async () => {
    // A start that failed has nothing to stop; its error is the beforeAll's.
    const started = await starting?.catch(() => undefined);
    if (started && !stopped) await started.stop();
  });
  return {
    get service() {
      return current().service;
    },
    get config() {
      return current().config;
    },
    get logs() {
      return current().logs;
    },
    get clock() {
      return current().clock;
    },
    get dataDir() {
      return current().dataDir;
    },
    get moduleEnv() {
      return current().moduleEnv;
    },
    client: (project = 'project-a', actions?: readonly string[]) => lazyClient(current, project, actions),
    token: (project?: string, actions?: readonly string[]) => current().token(project, actions),
    restart: () => current().restart(),
    async stop() {
      stopped = true;
      await current().stop();
    },
  };
}
