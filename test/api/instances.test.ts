/**
 * Several instances of the service, as production runs them (README "Running several
 * instances"): three processes on one PostgreSQL database (a throwaway cluster of Debian's server)
 * and one SoftHSM token, each with its own data directory and name. What one does, the others see;
 * the background jobs run once among them; an instance that dies loses nothing acknowledged; a
 * database restart costs requests in flight a 503, not the service.
 */
import { Client } from 'pg';
import { runCliOn } from '../helpers/cli';
import { expectKmsError } from '../helpers/client';
import { eventually } from '../helpers/eventually';
import { startInstances, type Instance, type Instances } from '../helpers/instances';
import { usePostgresCluster } from '../helpers/postgres-cluster';

const cluster = usePostgresCluster();
let databaseUrl: string;
let instances: Instances;
let a: Instance;
let b: Instance;
let c: Instance;

beforeAll(async () => {
  databaseUrl = await cluster().freshDatabase();
  instances = await startInstances(databaseUrl, ['kms-a', 'kms-b', 'kms-c'], { KMS_SWEEP_INTERVAL_SECONDS: '1', KMS_AUDIT_CHECKPOINT_SECONDS: '1' });
  [a, b, c] = instances.list as [Instance, Instance, Instance];
}, 180_000);

afterAll(async () => {
  await instances?.stop();
});

async function newKey(through: Instance): Promise<string> {
  const created = await through.kms.call('create-key', { key_alias: `k-${Math.random().toString(36).slice(2)}` });
  expect(created.status).toBe(200);
  return created.body.key_info.key_id as string;
}

/** The lines of every instance's log with this message. */
function logged(message: string): Array<Record<string, unknown>> {
  return instances.list.flatMap((instance) =>
    instance.process
      .output()
      .split('\n')
      .filter((line) => line.includes(`"msg":"${message}"`))
      .map((line) => JSON.parse(line) as Record<string, unknown>),
  );
}

it('a key created through one is usable through the others at once', async () => {
  const keyId = await newKey(a);
  const made = await b.kms.call('create-datakey', { key_id: keyId, datakey_length: '256' });
  expect(made.status).toBe(200);
  const opened = await c.kms.call('decrypt-datakey', { key_id: keyId, cipher_text: made.body.cipher_text, datakey_cipher_length: '32' });
  expect(opened.status).toBe(200);
  expect(opened.body.data_key).toBe(made.body.plain_text);
});

it('a disable through one is refused by every other once a second has passed, and an enable honoured', async () => {
  const keyId = await newKey(a);
  // Each instance has the key's state cached: the hot path's cache must not outlive the change.
  for (const instance of [b, c]) expect((await instance.kms.call('create-datakey', { key_id: keyId, datakey_length: '256' })).status).toBe(200);
  expect((await a.kms.call('disable-key', { key_id: keyId })).status).toBe(200);
  // The guarantee: a request that arrives a second after the change sees it (the change feed
  // usually tells sooner; the cache re-reads a record a second old in any case).
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const instance of [b, c]) expectKmsError(await instance.kms.call('create-datakey', { key_id: keyId, datakey_length: '256' }), 400, 'KMS.0209');
  expect((await b.kms.call('enable-key', { key_id: keyId })).status).toBe(200);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  for (const instance of [a, c]) expect((await instance.kms.call('create-datakey', { key_id: keyId, datakey_length: '256' })).status).toBe(200);
});

it('an alias made or moved through one names its key on every other (aliases resolve through a cache the change feed empties)', async () => {
  const first = await newKey(a);
  const second = await newKey(a);
  expect((await a.kms.call('aliases', { key_id: first, alias: 'alias/shared' })).status).toBe(201);
  const keyOf = async (instance: Instance): Promise<string | undefined> => (await instance.kms.call('describe-key', { key_id: 'alias/shared' })).body.key_info?.key_id;
  // Read (and cached) on b and c before the move.
  for (const instance of [b, c]) expect(await keyOf(instance)).toBe(first);
  expect((await a.kms.call('alias/associate', { alias: 'alias/shared', target_key_id: second })).status).toBe(200);
  for (const instance of [b, c]) await eventually(`${instance.name} resolving the moved alias`, () => keyOf(instance), { until: (keyId) => keyId === second });
});

/** One SQL statement on the shared database, as an operator (or time passing) would change it. */
async function sql(text: string, values: unknown[]): Promise<void> {
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(text, values);
  } finally {
    await client.end();
  }
}

it('a deletion and a rotation due at once run exactly once among the instances', async () => {
  const deleted = await newKey(a);
  const rotated = await newKey(b);
  expect((await a.kms.call('schedule-key-deletion', { key_id: deleted, pending_days: '7' })).status).toBe(200);
  expect((await c.kms.call('enable-key-rotation', { key_id: rotated })).status).toBe(200);
  // Time passes: both are due now, for every instance's next sweep (each sweeps every second).
  const past = Date.now() - 1000;
  await sql('UPDATE keys SET scheduled_deletion_date = $1 WHERE key_id = $2', [past, deleted]);
  await sql('UPDATE key_rotation SET next_rotation_at = $1 WHERE key_id = $2', [past, rotated]);

  await eventually('the deletion', () => a.kms.call('describe-key', { key_id: deleted }), { until: (response) => response.status === 404, limitMs: 20_000 });
  const rotations = async (): Promise<number> => (await c.kms.call('get-key-rotation-status', { key_id: rotated })).body.number_of_rotations as number;
  expect(await eventually('the rotation', rotations, { until: (count) => count >= 1, limitMs: 20_000 })).toBe(1);
  // Several more sweeps of every instance: none does either again.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  expect(await rotations()).toBe(1);
  expect(logged('key deleted: deletion window ended').filter((line) => line.keyId === deleted)).toHaveLength(1);
  expect(logged('key rotated').filter((line) => line.keyId === rotated)).toHaveLength(1);
});

interface Acknowledged {
  readonly keyId: string;
  readonly cipher: string;
  readonly plain: string;
}

/**
 * Clients creating data keys for `ms`, each request sent to the next instance in turn; a request
 * that fails (the connection refused or reset, a 5xx) is sent again to the next one, as a client
 * behind a load balancer retries. Resolves with what was acknowledged (200) and every status seen.
 */
async function load(keyId: string, through: readonly Instance[], ms: number, clients = 4): Promise<{ acknowledged: Acknowledged[]; statuses: number[]; failures: number }> {
  const acknowledged: Acknowledged[] = [];
  const statuses: number[] = [];
  let failures = 0;
  let turn = 0;
  const until = Date.now() + ms;
  const client = async (): Promise<void> => {
    while (Date.now() < until) {
      const instance = through[turn++ % through.length]!;
      try {
        const response = await instance.kms.call('create-datakey', { key_id: keyId, datakey_length: '256' });
        statuses.push(response.status);
        if (response.status === 200) acknowledged.push({ keyId, cipher: response.body.cipher_text as string, plain: response.body.plain_text as string });
      } catch {
        failures++; // the instance is gone: the next one is asked
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return { acknowledged, statuses, failures };
}

it('an instance killed under load loses nothing it acknowledged, and every audit chain verifies', async () => {
  const keyId = await newKey(a);
  const during = load(keyId, [a, b, c], 2500);
  await new Promise((resolve) => setTimeout(resolve, 800));
  await b.process.crash();
  const { acknowledged, statuses } = await during;
  expect(acknowledged.length).toBeGreaterThan(0);
  expect(statuses.filter((status) => status !== 200)).toEqual([]);
  for (const [i, dataKey] of acknowledged.entries()) {
    const opened = await [a, c][i % 2]!.kms.call('decrypt-datakey', { key_id: dataKey.keyId, cipher_text: dataKey.cipher, datakey_cipher_length: '32' });
    expect(opened.status).toBe(200);
    expect(opened.body.data_key).toBe(dataKey.plain);
  }
  await instances.restart(b);
  expect((await b.kms.call('create-datakey', { key_id: keyId, datakey_length: '256' })).status).toBe(200);
  for (const instance of instances.list) {
    // As each instance's operator runs it: its data directory, its name, the shared database.
    const verified = await runCliOn({ KMS_DATA_DIR: instance.dataDir, KMS_INSTANCE_ID: instance.name, KMS_DATABASE_URL: databaseUrl }, ['audit', 'verify']);
    expect({ instance: instance.name, code: verified.code, stderr: verified.stderr }).toEqual({ instance: instance.name, code: 0, stderr: '' });
    const files = (JSON.parse(verified.stdout) as { files: Array<{ file: string; checkpoint?: unknown }> }).files;
    expect(files.find((file) => file.file.endsWith('/audit.log'))?.checkpoint).toBeDefined();
  }
});

it('PostgreSQL restarted under load: requests meanwhile get 503, then every instance serves again without a restart', async () => {
  const keyId = await newKey(a);
  const during = load(keyId, [a, b, c], 3000);
  await new Promise((resolve) => setTimeout(resolve, 500));
  cluster().pause();
  try {
    // Longer than the key cache's backstop: every instance goes to the database meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 1500));
  } finally {
    cluster().resume();
  }
  const { statuses, failures } = await during;
  expect(failures).toBe(0);
  expect(new Set(statuses.filter((status) => status !== 200))).toEqual(new Set([503]));
  for (const instance of instances.list) {
    await eventually(`${instance.name} to serve again`, () => instance.kms.call('create-datakey', { key_id: keyId, datakey_length: '256' }), { until: (response) => response.status === 200, limitMs: 20_000 });
    expect(instance.process.child.exitCode).toBeNull();
  }
});
