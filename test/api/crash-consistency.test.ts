import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, statSync, truncateSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { runCliOn } from '../helpers/cli';
import { kmsClient, type KmsClient, type KmsResponse } from '../helpers/client';
import { makeDataDir } from '../helpers/service';
import { startServiceProcess, type ServiceProcess } from '../helpers/service-process';
import type { TokenInventory } from '../helpers/token-inventory';
import { auditLogFiles } from '../../src/audit/audit-log';
import { CREDENTIAL_SEALING_KEY, IMPORT_TOKEN_KEY } from '../../src/hsm/system-keys';
import { objectLabel } from '../../src/hsm/templates';

/**
 * Crash consistency under load. The service runs as users start it, on a data directory of its
 * own (embedded SoftHSM token, database, audit chains). Several clients drive mixed load at it
 * (create-key, create-datakey, disable/enable, schedule and cancel deletion, decrypt-datakey) for a
 * random short time; then every process of the service gets SIGKILL at once, as a machine crash
 * would. Odd rounds aim the kill at a key creation in flight; even rounds also tear the end of an
 * audit chain, as a power cut would leave it. The service starts again on the same directory, and
 * then:
 *
 * (a) every key the client was answered 200 for exists, in the state the client last was told
 *     (when no change of it was in flight at the crash), and every data key the client was answered
 *     200 for decrypts to the same plaintext. A key the client itself disabled or scheduled for
 *     deletion is first brought back by the API's own means (cancel-key-deletion, enable-key): the
 *     deletion window is at least 7 days, so no material may be gone, and "still decrypts" means
 *     "decrypts once the client has re-enabled the key";
 * (b) after the start-up reconciliation, the token and the database tell the same story: every
 *     material version a key record names is in the token, every KMS object in the token is named
 *     by a record (or is the service's own credential-sealing key), and no key creation is left
 *     half done; read through a PKCS#11 handle of a process of its own, not the service's view;
 * (c) `npm run kms -- audit verify` passes on the data directory (a torn last line is moved aside
 *     at start-up).
 *
 * Twenty rounds on one data directory, so that each crash also lands on what the earlier ones left.
 */

/** KMS_WORKERS of the service: undefined is its default (a cluster, one worker per CPU, at most 4). */
const WORKERS: string | undefined = undefined;
const ROUNDS = 20;
const CLIENTS = 4;
const LOAD_MS = { min: 300, max: 2000 };
/** Key creations per client and round: enough to crash some of them half done, few enough to keep the token small. */
const KEYS_PER_CLIENT_AND_ROUND = 2;
/** How long after sending a create-key an aimed kill may come (a creation takes a few milliseconds here). */
const AIM_SPREAD_MS = 40;
const CHECK_CONCURRENCY = 8;
const TOKEN_LABEL = 'kms';
const ROOT = path.resolve(__dirname, '..', '..');

type KeyState = '2' | '3' | '4';

interface TrackedKey {
  readonly id: string;
  /** The one client that changes its state, so the state it was last told is known. */
  readonly owner: number;
  /** The state the client was last answered; undefined while a change is in flight (and after a crash cut it). */
  state: KeyState | undefined;
}

interface TrackedDataKey {
  readonly keyId: string;
  readonly cipherText: string;
  readonly plainText: string;
  readonly context: Record<string, string> | undefined;
  readonly round: number;
}

interface AdminCredentials {
  readonly project_id: string;
  readonly token: string;
}

const errorCode = (response: KmsResponse): string | undefined => response.body?.error?.error_code;
const describeResponse = (operation: string, response: KmsResponse): string => `${operation} → ${response.status} ${errorCode(response) ?? ''}`.trim();
const pick = <T>(items: readonly T[]): T | undefined => (items.length === 0 ? undefined : items[randomInt(items.length)]);

/** Runs `work` on every item, at most `limit` at a time. */
async function eachLimited<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

function readInventory(dataDir: string): Promise<TokenInventory> {
  const softhsm = path.join(dataDir, 'softhsm');
  const env: NodeJS.ProcessEnv = { ...process.env, SOFTHSM2_CONF: path.join(softhsm, 'softhsm2.conf') };
  const args = ['--import', 'tsx', path.join(ROOT, 'test', 'helpers', 'token-inventory.ts'), TOKEN_LABEL, path.join(softhsm, 'user.pin')];
  const child = spawn(process.execPath, args, { cwd: ROOT, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout) as TokenInventory) : reject(new Error(`token inventory failed (${code}): ${stderr}`)))),
  );
}

/** What the database says should be in the token, and the key creations it has not finished. */
function readDatabase(dataDir: string): { materials: string[]; unfinished: string[] } {
  const db = new Database(path.join(dataDir, 'kms.sqlite'));
  try {
    const materials = db.prepare<[], { key_id: string; version: number }>('SELECT key_id, version FROM key_materials').all();
    const unfinished = db.prepare<[], { key_id: string }>('SELECT key_id FROM keys WHERE provisioned = 0').all();
    return { materials: materials.map((row) => objectLabel({ keyId: row.key_id, version: row.version })), unfinished: unfinished.map((row) => row.key_id) };
  } finally {
    db.close();
  }
}

/** The lines a start moved aside from `chain` (`<chain>.partial-<time>` files), so far. */
function partialsOf(chain: string): number {
  return readdirSync(path.dirname(chain)).filter((name) => name.startsWith(`${path.basename(chain)}.partial-`)).length;
}

interface Torn {
  readonly chain: string;
  readonly partialsBefore: number;
}

/**
 * Cuts the last line of the largest audit chain in the middle, as a power cut during the write
 * would leave it (a process crash alone does not: the page cache keeps what write(2) took).
 */
function tearLastAuditLine(dataDir: string): Torn | undefined {
  const file = auditLogFiles(dataDir).sort((a, b) => statSync(b).size - statSync(a).size)[0];
  if (!file) return undefined;
  const bytes = readFileSync(file);
  // The last line with its newline; cutting 1 to all but one of its bytes leaves it incomplete.
  const lastLineLength = bytes.length - (bytes.lastIndexOf(0x0a, bytes.length - 2) + 1);
  if (lastLineLength < 2) return undefined;
  truncateSync(file, bytes.length - randomInt(1, lastLineLength));
  return { chain: file, partialsBefore: partialsOf(file) };
}

class CrashScenario {
  readonly keys: TrackedKey[] = [];
  readonly dataKeys: TrackedDataKey[] = [];
  /** What went wrong, one line each, with the round it happened in. */
  readonly problems: string[] = [];
  /** Operations answered 200 during the load, by name. */
  readonly answered = new Map<string, number>();
  private admin: AdminCredentials | undefined;
  /** Set while an aimed kill waits for a key creation to be sent: client 0 sends one next, then calls it. */
  private creationWanted: (() => void) | undefined;

  constructor(readonly dataDir: string) {}

  client(service: ServiceProcess): KmsClient {
    this.admin ??= JSON.parse(readFileSync(path.join(this.dataDir, 'admin-credentials.json'), 'utf8')) as AdminCredentials;
    return kmsClient(service.url, this.admin.project_id, { 'x-auth-token': this.admin.token });
  }

  /**
   * Mixed load from several clients for a random time, then SIGKILL to every process of the
   * service. With `aimAtCreation`, the kill comes a random few milliseconds after a create-key was
   * sent, so that it lands anywhere in the creation (before the record, between record and HSM
   * key, between HSM key and visibility, after the answer) far more often than load alone makes it.
   */
  async crashUnderLoad(service: ServiceProcess, round: number, aimAtCreation: boolean): Promise<void> {
    const kms = this.client(service);
    let killing = false;
    const clients = Promise.allSettled(
      Array.from({ length: CLIENTS }, async (_, index) => {
        try {
          await this.runClient(kms, round, index);
        } catch (error) {
          // A request cut by the crash; before it, every request must get an answer.
          if (!killing) throw error;
        }
      }),
    );
    await new Promise((resolve) => setTimeout(resolve, randomInt(LOAD_MS.min, LOAD_MS.max + 1)));
    if (aimAtCreation) {
      // (Or until the clients stopped: one that failed is reported below.)
      await Promise.race([new Promise<void>((resolve) => (this.creationWanted = resolve)), clients]);
      await new Promise((resolve) => setTimeout(resolve, randomInt(0, AIM_SPREAD_MS + 1)));
    }
    killing = true;
    await service.crash();
    for (const outcome of await clients) if (outcome.status === 'rejected') throw outcome.reason;
  }

  /** One client: sends one request at a time, for ever (until a request fails, as at the crash). */
  private async runClient(kms: KmsClient, round: number, index: number): Promise<void> {
    let created = 0;
    for (;;) {
      const own = this.keys.filter((key) => key.owner === index);
      const roll = Math.random();
      const sent = index === 0 ? this.creationWanted : undefined;
      if (sent) {
        this.creationWanted = undefined;
        await this.createKey(kms, round, index, sent);
      } else if (own.length === 0 || (roll < 0.04 && created < KEYS_PER_CLIENT_AND_ROUND)) {
        created++;
        await this.createKey(kms, round, index);
      } else if (roll < 0.16) {
        await this.changeState(kms, round, pick(own)!, roll < 0.12 ? 'toggle' : 'schedule');
      } else if (roll < 0.26 && this.dataKeys.length > 0) {
        await this.decryptDuringLoad(kms, round, pick(this.dataKeys)!);
      } else {
        await this.createDataKey(kms, round, index);
      }
    }
  }

  private async createKey(kms: KmsClient, round: number, index: number, onSent?: () => void): Promise<void> {
    const answer = kms.call('create-key', { key_alias: `crash-${round}-${index}-${this.keys.length}-${randomInt(1e9)}` });
    onSent?.();
    const response = await answer;
    if (response.status !== 200) return this.problem(round, `load: ${describeResponse('create-key', response)}`);
    this.count('create-key');
    this.keys.push({ id: response.body.key_info.key_id, owner: index, state: '2' });
  }

  private async createDataKey(kms: KmsClient, round: number, index: number): Promise<void> {
    const key = pick(this.keys)!;
    const context = Math.random() < 0.5 ? { round: String(round), client: String(index) } : undefined;
    const response = await kms.call('create-datakey', { key_id: key.id, ...(context ? { encryption_context: context } : {}) });
    if (response.status === 200) {
      this.count('create-datakey');
      this.dataKeys.push({ keyId: key.id, cipherText: response.body.cipher_text, plainText: response.body.plain_text, context, round });
    } else if (!this.refusedForState(response)) {
      this.problem(round, `load: ${describeResponse('create-datakey', response)}`);
    }
  }

  private async decryptDuringLoad(kms: KmsClient, round: number, dataKey: TrackedDataKey): Promise<void> {
    const response = await this.decrypt(kms, dataKey);
    if (response.status === 200) this.count('decrypt-datakey');
    if (response.status === 200 ? response.body.data_key !== dataKey.plainText : !this.refusedForState(response)) {
      this.problem(round, `load: ${describeResponse('decrypt-datakey', response)}`);
    }
  }

  /** Only the key's owner changes its state, one request at a time: the outcome is known unless the crash cuts it. */
  private async changeState(kms: KmsClient, round: number, key: TrackedKey, change: 'toggle' | 'schedule'): Promise<void> {
    const before = key.state;
    let operation: string;
    let after: KeyState;
    if (change === 'schedule' && before !== '4') [operation, after] = ['schedule-key-deletion', '4'];
    else if (before === '2') [operation, after] = ['disable-key', '3'];
    else if (before === '3') [operation, after] = ['enable-key', '2'];
    else [operation, after] = ['cancel-key-deletion', '3'];
    key.state = undefined;
    const response = await kms.call(operation, { key_id: key.id, ...(after === '4' ? { pending_days: '7' } : {}) });
    if (response.status === 200) {
      key.state = after;
      this.count(operation);
    } else {
      key.state = before;
      this.problem(round, `load: ${describeResponse(operation, response)} (key was in state ${before})`);
    }
  }

  /** A data key refused because another client disabled its key or scheduled its deletion. */
  private refusedForState(response: KmsResponse): boolean {
    return response.status === 400 && ['KMS.0209', 'KMS.0210'].includes(errorCode(response) ?? '');
  }

  private decrypt(kms: KmsClient, dataKey: TrackedDataKey): Promise<KmsResponse> {
    return kms.call('decrypt-datakey', {
      key_id: dataKey.keyId,
      cipher_text: dataKey.cipherText,
      datakey_cipher_length: '32',
      ...(dataKey.context ? { encryption_context: dataKey.context } : {}),
    });
  }

  /**
   * (a), (b) and (c) after a restart; `torn`: the chain whose last line the crash tore, if any.
   * The token, the database and the audit chains are read first, before any request: what they
   * show is what the crash and the start-up left, and no audit line is being written meanwhile.
   */
  async checkRecovery(service: ServiceProcess, round: number, torn: Torn | undefined): Promise<void> {
    const [token, verdict] = await Promise.all([readInventory(this.dataDir), runCliOn({ KMS_DATA_DIR: this.dataDir }, ['audit', 'verify'])]);

    // (b) The token, read by a process of its own, against the database.
    const database = readDatabase(this.dataDir);
    if (token.tokens !== 1) this.problem(round, `${token.tokens} tokens are labelled ${TOKEN_LABEL}`);
    const expected = new Set([...database.materials, objectLabel(CREDENTIAL_SEALING_KEY), objectLabel(IMPORT_TOKEN_KEY)]);
    const inToken = new Set(token.secretKeyLabels);
    for (const label of expected) if (!inToken.has(label)) this.problem(round, `record without material: ${label}`);
    for (const label of inToken) if (!expected.has(label)) this.problem(round, `material without a record: ${label}`);
    if (token.secretKeyLabels.length !== inToken.size) this.problem(round, 'the token holds two objects with one label');
    for (const keyId of database.unfinished) this.problem(round, `key creation left half done after start-up: ${keyId}`);
    for (const message of ['keys in the database have no material in the token', 'token holds KMS key material that no record names']) {
      if (service.output().includes(message)) this.problem(round, `the service logged at start-up: ${message}`);
    }

    // (c) The audit chains, with the operator's command line; a torn last line was moved aside.
    if (verdict.code !== 0) this.problem(round, `audit verify failed (${verdict.code}): ${verdict.stdout}${verdict.stderr}`);
    if (torn && partialsOf(torn.chain) !== torn.partialsBefore + 1) {
      this.problem(round, `the torn line of ${path.basename(torn.chain)} was not moved aside`);
    }

    // (a) Keys: there, in the state last answered; then enabled again by the client's own means.
    const kms = this.client(service);
    await eachLimited(this.keys, CHECK_CONCURRENCY, async (key) => {
      const described = await kms.call('describe-key', { key_id: key.id });
      if (described.status !== 200) return this.problem(round, `key ${key.id} answered 200 is lost: ${describeResponse('describe-key', described)}`);
      const state = described.body.key_info.key_state as string;
      if (key.state !== undefined && state !== key.state) this.problem(round, `key ${key.id}: state ${state}, the client was told ${key.state}`);
      const steps = state === '4' ? ['cancel-key-deletion', 'enable-key'] : state === '3' ? ['enable-key'] : [];
      for (const operation of steps) {
        const response = await kms.call(operation, { key_id: key.id });
        if (response.status !== 200) return this.problem(round, `key ${key.id}: ${describeResponse(operation, response)}`);
      }
      key.state = '2';
    });

    // (a) Data keys: every one of this round, and one per key of the earlier rounds (its CMK is what a later crash could lose).
    const checked = new Set<string>();
    const toCheck = this.dataKeys.filter((dataKey) => {
      const take = dataKey.round === round || !checked.has(dataKey.keyId);
      checked.add(dataKey.keyId);
      return take;
    });
    await eachLimited(toCheck, CHECK_CONCURRENCY, async (dataKey) => {
      const response = await this.decrypt(kms, dataKey);
      if (response.status !== 200 || response.body.data_key !== dataKey.plainText) {
        this.problem(round, `data key of ${dataKey.keyId} (round ${dataKey.round}) does not decrypt: ${describeResponse('decrypt-datakey', response)}`);
      }
    });
  }

  private count(operation: string): void {
    this.answered.set(operation, (this.answered.get(operation) ?? 0) + 1);
  }

  private problem(round: number, message: string): void {
    this.problems.push(`round ${round}: ${message}`);
  }
}

describe('crash consistency: SIGKILL of every service process under mixed load', () => {
  const dataDir = makeDataDir();
  const env = WORKERS === undefined ? {} : { KMS_WORKERS: WORKERS };
  let service: ServiceProcess | undefined;

  afterAll(async () => {
    await service?.crash();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`loses no answered data key, leaves token and database agreeing and the audit chain whole, ${ROUNDS} times over`, async () => {
    const scenario = new CrashScenario(dataDir);
    service = await startServiceProcess(dataDir, env);
    for (let round = 1; round <= ROUNDS; round++) {
      // Odd rounds aim the kill at a key creation; even rounds tear the end of an audit chain.
      await scenario.crashUnderLoad(service, round, round % 2 === 1);
      service = undefined;
      const torn = round % 2 === 0 ? tearLastAuditLine(dataDir) : undefined;
      service = await startServiceProcess(dataDir, env);
      await scenario.checkRecovery(service, round, torn);
      // Stop at the first round that found something: the later ones would only repeat it.
      expect(scenario.problems).toEqual([]);
    }
    // The load did what it is for: every operation of the mix answered, data keys in every round.
    const operations = ['create-key', 'create-datakey', 'decrypt-datakey', 'disable-key', 'enable-key', 'schedule-key-deletion', 'cancel-key-deletion'];
    expect(operations.filter((operation) => !scenario.answered.get(operation))).toEqual([]);
    expect(new Set(scenario.dataKeys.map((dataKey) => dataKey.round)).size).toBe(ROUNDS);

    // A clean stop at the end, and the chains verify once more.
    expect(await service.stop()).toBe(0);
    service = undefined;
    const verdict = await runCliOn({ KMS_DATA_DIR: dataDir }, ['audit', 'verify']);
    expect(verdict.code).toBe(0);
    expect(JSON.parse(verdict.stdout)).toMatchObject({ ok: true });
  }, 600_000);
});
