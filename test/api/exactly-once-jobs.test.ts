import { randomUUID } from 'node:crypto';
import type { JobLease, JobLeases } from '../../src/domain/coordination';
import type { MetadataStore } from '../../src/domain/repositories';
import type { Hsm } from '../../src/hsm/hsm';
import { JOB_LEASE_TTL_MS, JOBS } from '../../src/kms/job-lease';
import { KeyRotator } from '../../src/kms/key-rotation';
import { KeyMaintenance } from '../../src/kms/maintenance';
import { createLogger } from '../../src/logger';
import { openStore } from '../../src/store/open-store';
import { eventually } from '../helpers/eventually';
import { useTestService } from '../helpers/service';

/**
 * The sweeps' jobs happen once however many processes or instances share the store: the
 * deletion of a key whose window ended, the roll-back of an interrupted creation or rotation, a
 * scheduled rotation. Each item is done under its lease (src/kms/job-lease.ts); a second store on
 * the service's database plays the other process. One that holds an item's lease keeps the
 * service's sweep off it; one that died with it leaves it to the service once its lease's ttl has
 * passed (played by renewing it to an expiry already past, so that no test waits for a clock).
 */

let other: MetadataStore;
let aliases = 0;

const HOUR_MS = 3_600_000;

// Declared before useTestService, so that it runs before the service stops and its data directory goes.
afterAll(async () => {
  await other?.close();
});

// No timed sweep: every pass is the test's.
const t = useTestService({ env: { KMS_SWEEP_INTERVAL_SECONDS: '86400' } });
const kms = t.client('project-a');

beforeAll(async () => {
  other = await openStore(t.config);
});

async function newKey(): Promise<string> {
  const created = await kms.call('create-key', { key_alias: `once-${++aliases}` });
  expect(created.status).toBe(200);
  return created.body.key_info.key_id as string;
}

/** The other process takes an item's lease (and then dies, or is still working on it). */
async function heldElsewhere(job: string, item: string): Promise<JobLease> {
  const lease = await other.leases.tryClaim(job, item, JOB_LEASE_TTL_MS);
  expect(lease).toBeDefined();
  return lease!;
}

/** The lease's ttl passes without its dead holder renewing it. */
async function expire(lease: JobLease): Promise<void> {
  expect(await lease.renew(-1)).toBe(true);
}

/**
 * The service's leases, with `meanwhile` (another process finishing the item) run once between
 * the sweep's reading of its list and its first claim.
 */
function leasesAfter(meanwhile: () => Promise<void>): JobLeases {
  let done = false;
  return {
    async tryClaim(job, item, ttlMs) {
      if (!done) {
        done = true;
        await meanwhile();
      }
      return t.service.store.leases.tryClaim(job, item, ttlMs);
    },
  };
}

/** The service's store with other leases. */
function withLeases(leases: JobLeases): MetadataStore {
  const store = t.service.store;
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'leases') return leases;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('the deletion of a key whose window ended', () => {
  it('is left to the process holding its lease, and done here once that lease has expired', async () => {
    const keyId = await newKey();
    expect((await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
    t.clock.advanceDays(8);
    const lease = await heldElsewhere(JOBS.deletion, keyId);
    expect(await t.service.maintenance.run()).toMatchObject({ deleted: 0, skipped: 1, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(true);
    await expire(lease);
    expect(await t.service.maintenance.run()).toMatchObject({ deleted: 1, skipped: 0, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expect(await t.service.store.keys.materialVersions(keyId)).toEqual([]);
  });

  it('is done by one of two processes sweeping at once', async () => {
    const keyId = await newKey();
    expect((await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
    t.clock.advanceDays(8);
    // The other process's sweep, held inside its HSM call until the service's sweep has run.
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const destroying: string[] = [];
    const hsm = t.service.hsm;
    const gated = new Proxy(hsm, {
      get(target, property, receiver) {
        if (property === 'destroyKey') {
          return async (ref: Parameters<Hsm['destroyKey']>[0]) => {
            destroying.push(`${ref.keyId}/${ref.version}`);
            await gate;
            return hsm.destroyKey(ref);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const elsewhere = new KeyMaintenance({ store: other, hsm: gated, clock: t.clock.read, logger: createLogger('silent') });
    const theirs = elsewhere.run();
    await eventually('the other sweep inside its HSM call', () => destroying.length > 0);
    const ours = await t.service.maintenance.run();
    expect(ours).toMatchObject({ deleted: 0, skipped: 1, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(true);
    open();
    expect(await theirs).toMatchObject({ deleted: 1, skipped: 0, failed: 0 });
    expect(destroying).toEqual([`${keyId}/0`]);
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    // Its lease was released: nothing is left for a later pass.
    expect(await t.service.maintenance.run()).toMatchObject({ deleted: 0, skipped: 0, failed: 0 });
  });

  it('finished by another process after this one listed it, is neither done nor counted again', async () => {
    const keyId = await newKey();
    expect((await kms.call('schedule-key-deletion', { key_id: keyId, pending_days: '7' })).status).toBe(200);
    t.clock.advanceDays(8);
    const elsewhere = new KeyMaintenance({ store: other, hsm: t.service.hsm, clock: t.clock.read, logger: createLogger('silent') });
    let theirs: Awaited<ReturnType<KeyMaintenance['run']>> | undefined;
    const late = new KeyMaintenance({
      store: withLeases(leasesAfter(async () => void (theirs = await elsewhere.run()))),
      hsm: t.service.hsm,
      clock: t.clock.read,
      logger: createLogger('silent'),
    });
    expect(await late.run()).toMatchObject({ deleted: 0, skipped: 1, failed: 0 });
    expect(theirs).toMatchObject({ deleted: 1, skipped: 0, failed: 0 });
  });
});

describe('the roll-back of an interrupted creation', () => {
  /** A creation that got past the HSM step and no further (yet), as persistence.test.ts makes one. */
  async function unfinishedCreation(): Promise<string> {
    const keyId = randomUUID();
    await t.service.store.keys.insertProvisioning(
      {
        keyId,
        projectId: 'project-a',
        alias: `interrupted-${keyId}`,
        description: '',
        keySpec: 'AES_256',
        keyUsage: 'ENCRYPT_DECRYPT',
        origin: 'kms',
        state: '2',
        creationDate: t.clock.now,
        scheduledDeletionDate: null,
        materialVersion: 0,
      },
      1000,
    );
    await t.service.hsm.generateKey({ keyId, version: 0 });
    return keyId;
  }

  it('is not done to a creation that finished after this process listed it (a slow HSM)', async () => {
    const keyId = await unfinishedCreation();
    t.clock.now += HOUR_MS;
    const late = new KeyMaintenance({
      store: withLeases(leasesAfter(async () => void expect(await other.keys.markProvisioned(keyId)).toBe(true))),
      hsm: t.service.hsm,
      clock: t.clock.read,
      logger: createLogger('silent'),
    });
    expect(await late.run()).toMatchObject({ rolledBack: 0, skipped: 1, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(true);
    expect((await kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
  });

  it('wins against a creation that finishes while its material is being destroyed: that key never becomes visible without material', async () => {
    const keyId = await unfinishedCreation();
    t.clock.now += HOUR_MS;
    // The creating process's HSM call ends (past the grace) just as the sweep destroys its material.
    const madeVisible: boolean[] = [];
    const hsm = t.service.hsm;
    const racing = new Proxy(hsm, {
      get(target, property, receiver) {
        if (property === 'destroyKey') {
          return async (ref: Parameters<Hsm['destroyKey']>[0]) => {
            madeVisible.push(await other.keys.markProvisioned(keyId));
            return hsm.destroyKey(ref);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const sweep = new KeyMaintenance({ store: t.service.store, hsm: racing, clock: t.clock.read, logger: createLogger('silent') });
    expect(await sweep.run()).toMatchObject({ rolledBack: 1, skipped: 0, failed: 0 });
    // The creation lost (its request answers KMS.0103), and nothing names the destroyed material.
    expect(madeVisible).toEqual([false]);
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expect((await kms.call('describe-key', { key_id: keyId })).body).toMatchObject({ error: { error_code: 'KMS.0207' } });
    expect(await t.service.store.keys.unprovisioned(t.clock.now)).toEqual([]);
  });

  it('is left to the process holding its lease, and done here once that lease has expired', async () => {
    const keyId = await unfinishedCreation();
    t.clock.now += HOUR_MS;
    const lease = await heldElsewhere(JOBS.creationRollback, keyId);
    expect(await t.service.maintenance.run()).toMatchObject({ rolledBack: 0, skipped: 1, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(true);
    await expire(lease);
    expect(await t.service.maintenance.run()).toMatchObject({ rolledBack: 1, skipped: 0, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expect(await t.service.store.keys.unprovisioned(t.clock.now)).toEqual([]);
  });
});

describe('the roll-back of an interrupted rotation', () => {
  it('is left to the process holding its lease, and done here once that lease has expired', async () => {
    const keyId = await newKey();
    // The other process claimed a rotation, made its material, and died.
    expect(await other.rotations.claim(keyId, 'on-demand', t.clock.now, t.config.sealBudget)).toBe(1);
    await t.service.hsm.generateKey({ keyId, version: 1 });
    t.clock.now += HOUR_MS;
    const lease = await heldElsewhere(JOBS.rotationRollback, `${keyId}/1`);
    expect(await t.service.maintenance.run()).toMatchObject({ skipped: 1, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 1 })).toBe(true);
    await expire(lease);
    expect(await t.service.maintenance.run()).toMatchObject({ skipped: 0, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 1 })).toBe(false);
    // The claim is released: the key rotates again, to the version the dead one had claimed.
    expect((await kms.call('rotate-on-demand', { key_id: keyId })).status).toBe(200);
    expect(await t.service.hsm.hasKey({ keyId, version: 1 })).toBe(true);
  });

  it("rolled back by another process after this one listed it, leaves alone the new rotation that took the claim's version", async () => {
    const keyId = await newKey();
    expect(await other.rotations.claim(keyId, 'on-demand', t.clock.now, t.config.sealBudget)).toBe(1);
    t.clock.now += HOUR_MS;
    const logger = createLogger('silent');
    const elsewhere = new KeyRotator({ rotations: other.rotations, leases: other.leases, hsm: t.service.hsm, clock: t.clock.read, logger, sealBudget: t.config.sealBudget });
    const late = new KeyRotator({
      rotations: t.service.store.rotations,
      // Meanwhile the other process rolls the claim back, and the key is rotated anew: version 1 again, current now.
      leases: leasesAfter(async () => {
        expect(await elsewhere.reconcile(t.clock.now)).toEqual({ rolledBack: 1, skipped: 0, failed: 0 });
        expect((await kms.call('rotate-on-demand', { key_id: keyId })).status).toBe(200);
      }),
      hsm: t.service.hsm,
      clock: t.clock.read,
      logger,
      sealBudget: t.config.sealBudget,
    });
    expect(await late.reconcile(t.clock.now - 1)).toEqual({ rolledBack: 0, skipped: 1, failed: 0 });
    expect(await t.service.hsm.hasKey({ keyId, version: 1 })).toBe(true);
    const sealed = await kms.call('encrypt-data', { key_id: keyId, plain_text: 'under the new version' });
    expect((await kms.call('decrypt-data', { cipher_text: sealed.body.cipher_text })).body.plain_text).toBe('under the new version');
  });
});

describe('a scheduled rotation come due', () => {
  it('is left to the process holding its lease, and done here once that lease has expired', async () => {
    const keyId = await newKey();
    expect((await kms.call('enable-key-rotation', { key_id: keyId })).status).toBe(200);
    t.clock.advanceDays(366);
    const lease = await heldElsewhere(JOBS.rotation, keyId);
    expect(await t.service.rotator.rotateDue()).toEqual({ rotated: 0, skipped: 1, failed: 0 });
    expect((await kms.call('get-key-rotation-status', { key_id: keyId })).body.number_of_rotations).toBe(0);
    await expire(lease);
    expect(await t.service.rotator.rotateDue()).toEqual({ rotated: 1, skipped: 0, failed: 0 });
    expect((await kms.call('get-key-rotation-status', { key_id: keyId })).body.number_of_rotations).toBe(1);
  });
});
