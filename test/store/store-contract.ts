import { randomBytes, randomUUID } from 'node:crypto';
import type { StoreChange } from '../../src/domain/coordination';
import { AliasKeyGoneError, AliasNotHeldError, AliasQuotaExceededError, AliasTakenError, type AliasRecord } from '../../src/domain/aliases';
import type { CredentialRecord } from '../../src/domain/credentials';
import { GrantKeyGoneError, GrantParentGoneError, GrantQuotaExceededError, type GrantRecord } from '../../src/domain/grants';
import { DuplicateAliasError, isDestroyed, KEY_STATE, QuotaExceededError, type KeyRecord } from '../../src/domain/keys';
import type { MetadataStore } from '../../src/domain/repositories';
import { nextRotationAfter, ROTATION_OFF } from '../../src/domain/rotation';
import { TagKeyGoneError, TagLimitExceededError } from '../../src/domain/tags';
import { eventually } from '../helpers/eventually';

/**
 * The store contract suite: what every MetadataStore (src/domain/repositories.ts and
 * coordination.ts) must do, run against each implementation (as kes runs one suite against every
 * backend). A runner calls it with two openers:
 * - `openFreshStore`: a store on an empty database of its own (a fresh SQLite file, a fresh
 *   PostgreSQL database);
 * - `openSameDatabase(store)`: a second instance on the database of `store`, as another process or
 *   another machine would open it (its own connections, its own change feed).
 * Every store either opens is closed after each test.
 *
 * Concurrency is tested with real concurrent calls through two instances, never with timings;
 * where a test must show that something did NOT happen (a change not delivered before its commit),
 * it gives the store a few event-loop turns to do it (settle), which a slow machine can only make
 * easier to pass, never fail.
 */
export function describeStoreContract(
  name: string,
  openFreshStore: () => Promise<MetadataStore>,
  openSameDatabase: (store: MetadataStore) => Promise<MetadataStore>,
): void {
  describe(`store contract: ${name}`, () => {
    const opened: MetadataStore[] = [];
    const fresh = async (): Promise<MetadataStore> => remember(await openFreshStore());
    const another = async (store: MetadataStore): Promise<MetadataStore> => remember(await openSameDatabase(store));
    function remember(store: MetadataStore): MetadataStore {
      opened.push(store);
      return store;
    }
    afterEach(async () => {
      const stores = opened.splice(0).reverse();
      for (const store of stores) await store.close();
    });

    describe('keys', () => {
      test('a key in creation is counted for its project but invisible until provisioned', async () => {
        const store = await fresh();
        const record = newKey();
        await store.keys.insertProvisioning(record, 10);
        expect(await store.keys.get(record.projectId, record.keyId)).toBeUndefined();
        expect(await store.keys.getByAlias(record.projectId, record.alias)).toBeUndefined();
        expect((await store.keys.list(record.projectId, page())).total).toBe(0);
        expect((await store.keys.countByState(NOW)).size).toBe(0);
        expect(await store.keys.countKeys(record.projectId, NOW)).toBe(1);
        expect(await store.keys.materialVersions(record.keyId)).toEqual([record.materialVersion]);
        expect(await store.keys.allMaterials()).toEqual([]);
        expect(ids(await store.keys.unprovisioned(record.creationDate))).toEqual([record.keyId]);
        expect(await store.keys.unprovisioned(record.creationDate - 1)).toEqual([]);

        expect(await store.keys.markProvisioned(record.keyId)).toBe(true);
        expect(await store.keys.get(record.projectId, record.keyId)).toEqual(record);
        expect(await store.keys.getByAlias(record.projectId, record.alias)).toEqual(record);
        expect(await store.keys.unprovisioned(record.creationDate)).toEqual([]);
        expect(await store.keys.allMaterials()).toEqual([{ keyId: record.keyId, version: record.materialVersion }]);
        expect(await store.keys.countByState(NOW)).toEqual(new Map([[KEY_STATE.enabled, 1]]));
      });

      test('markProvisioned of a key that is gone is false', async () => {
        const store = await fresh();
        expect(await store.keys.markProvisioned(randomUUID())).toBe(false);
        const record = newKey();
        await store.keys.insertProvisioning(record, 10);
        await store.keys.remove(record.keyId);
        expect(await store.keys.markProvisioned(record.keyId)).toBe(false);
      });

      test("an unfinished creation claimed for its roll-back can no longer be made visible, and a visible key cannot be claimed", async () => {
        const store = await fresh();
        const claimed = newKey();
        await store.keys.insertProvisioning(claimed, 10);
        expect(await store.keys.claimRollback(claimed.keyId)).toBe(true);
        // Claimed again by a roll-back retried after a failure: still its to finish.
        expect(await store.keys.claimRollback(claimed.keyId)).toBe(true);
        expect(await store.keys.markProvisioned(claimed.keyId)).toBe(false);
        expect(await store.keys.get(claimed.projectId, claimed.keyId)).toBeUndefined();
        expect(ids(await store.keys.unprovisioned(claimed.creationDate))).toEqual([claimed.keyId]);

        const finished = newKey();
        await store.keys.insertProvisioning(finished, 10);
        expect(await store.keys.markProvisioned(finished.keyId)).toBe(true);
        expect(await store.keys.claimRollback(finished.keyId)).toBe(false);
        expect(await store.keys.get(finished.projectId, finished.keyId)).toEqual(finished);
        expect(await store.keys.claimRollback(randomUUID())).toBe(false);
      });

      test('of a creation finishing while another instance claims its roll-back, exactly one wins', async () => {
        const store = await fresh();
        const elsewhere = await another(store);
        for (let round = 0; round < 10; round++) {
          const record = newKey();
          await store.keys.insertProvisioning(record, 100);
          const [visible, claimed] = await Promise.all([store.keys.markProvisioned(record.keyId), elsewhere.keys.claimRollback(record.keyId)]);
          expect([visible, claimed]).toContain(true);
          expect(visible).not.toBe(claimed);
          expect((await store.keys.get(record.projectId, record.keyId)) !== undefined).toBe(visible);
        }
      });

      test('a key is read only within its project', async () => {
        const store = await fresh();
        const record = await createKey(store);
        expect(await store.keys.get('another-project', record.keyId)).toBeUndefined();
        expect(await store.keys.getByAlias('another-project', record.alias)).toBeUndefined();
      });

      test('every field round-trips, and update writes alias, description, state and deletion date', async () => {
        const store = await fresh();
        const record = await createKey(store, { description: 'first é ✓', keySpec: 'SM4', keyUsage: 'ENCRYPT_DECRYPT', materialVersion: 3 });
        expect(await store.keys.get(record.projectId, record.keyId)).toEqual(record);
        const next: KeyRecord = { ...record, alias: `${record.alias}-renamed`, description: 'second', state: KEY_STATE.pendingDeletion, scheduledDeletionDate: NOW + 7 * 86_400_000 };
        await store.keys.update(next);
        expect(await store.keys.get(record.projectId, record.keyId)).toEqual(next);
        expect(await store.keys.getByAlias(record.projectId, record.alias)).toBeUndefined();
        // update writes what a transition may change, and nothing else.
        await store.keys.update({ ...next, keySpec: 'RSA_2048', materialVersion: 9, creationDate: 1 });
        expect(await store.keys.get(record.projectId, record.keyId)).toEqual(next);
      });

      test('an alias is unique within a project, a key in creation included; other projects may reuse it', async () => {
        const store = await fresh();
        const first = newKey();
        await store.keys.insertProvisioning(first, 10);
        await expect(store.keys.insertProvisioning(newKey({ alias: first.alias }), 10)).rejects.toBeInstanceOf(DuplicateAliasError);
        await store.keys.markProvisioned(first.keyId);
        await expect(store.keys.insertProvisioning(newKey({ alias: first.alias }), 10)).rejects.toBeInstanceOf(DuplicateAliasError);
        await createKey(store, { alias: first.alias, projectId: OTHER_PROJECT });
        const second = await createKey(store);
        await expect(store.keys.update({ ...second, alias: first.alias })).rejects.toBeInstanceOf(DuplicateAliasError);
        expect((await store.keys.get(second.projectId, second.keyId))?.alias).toBe(second.alias);
        // The refused insert left nothing behind.
        expect(await store.keys.countKeys(PROJECT, NOW)).toBe(2);
      });

      test('remove forgets the key, its material versions, grants and rotation state', async () => {
        const store = await fresh();
        const record = await createKey(store);
        const grant = newGrant(record.keyId);
        await store.grants.insert(grant, 10);
        await store.rotations.setSettings(record.keyId, { enabled: true, intervalDays: 30, nextRotationAt: NOW + 1000 });
        expect(await store.rotations.claim(record.keyId, 'on-demand', NOW, BUDGET)).toBe(record.materialVersion + 1);
        await store.keys.remove(record.keyId);
        expect(await store.keys.get(record.projectId, record.keyId)).toBeUndefined();
        expect(await store.keys.materialVersions(record.keyId)).toEqual([]);
        expect(await store.grants.get(record.projectId, grant.grantId, NOW)).toBeUndefined();
        expect(await store.grants.retirable(grant.retiringPrincipal!, page())).toEqual({ records: [], total: 0 });
        expect(await store.rotations.state(record.keyId)).toEqual(ROTATION_OFF);
        expect(await store.rotations.claimedBefore(NOW)).toEqual([]);
        expect(await store.keys.countKeys(record.projectId, NOW)).toBe(0);
        await store.keys.remove(record.keyId); // a second removal is harmless
      });

      test("list pages a project's existing keys oldest first, with the total, by state when asked", async () => {
        const store = await fresh();
        const made: KeyRecord[] = [];
        // Inserted newest first: the order must come from creationDate.
        for (let i = 5; i >= 1; i--) made.unshift(await createKey(store, { creationDate: NOW + i, state: i % 2 === 0 ? KEY_STATE.disabled : KEY_STATE.enabled }));
        await createKey(store, { projectId: OTHER_PROJECT });
        await store.keys.insertProvisioning(newKey(), 10); // in creation: not listed

        const all = await store.keys.list(PROJECT, page());
        expect(all.total).toBe(5);
        expect(ids(all.records)).toEqual(ids(made));
        const second = await store.keys.list(PROJECT, page({ offset: 2, limit: 2 }));
        expect(second.total).toBe(5);
        expect(ids(second.records)).toEqual(ids(made.slice(2, 4)));
        expect((await store.keys.list(PROJECT, page({ offset: 10 }))).records).toEqual([]);
        const disabled = await store.keys.list(PROJECT, { ...page(), state: KEY_STATE.disabled });
        expect(disabled.total).toBe(2);
        expect(ids(disabled.records)).toEqual(ids(made.filter((key) => key.state === KEY_STATE.disabled)));
        expect(await store.keys.countByState(NOW)).toEqual(
          new Map([
            [KEY_STATE.enabled, 4],
            [KEY_STATE.disabled, 2],
          ]),
        );
      });

      test('list filters by key spec when asked, and by nothing when not', async () => {
        const store = await fresh();
        const aes = await createKey(store, { creationDate: NOW + 1 });
        const rsa = await createKey(store, { creationDate: NOW + 2, keySpec: 'RSA_2048', keyUsage: 'SIGN_VERIFY' });
        const hmac = await createKey(store, { creationDate: NOW + 3, keySpec: 'HMAC_256', keyUsage: 'GENERATE_VERIFY_MAC' });
        expect(ids((await store.keys.list(PROJECT, page())).records)).toEqual(ids([aes, rsa, hmac]));
        const signing = await store.keys.list(PROJECT, { ...page(), spec: 'RSA_2048' });
        expect({ total: signing.total, ids: ids(signing.records) }).toEqual({ total: 1, ids: ids([rsa]) });
        expect(await store.keys.list(PROJECT, { ...page(), spec: 'EC_P256' })).toEqual({ records: [], total: 0 });
        expect((await store.keys.list(PROJECT, { ...page(), spec: 'HMAC_256', state: KEY_STATE.enabled })).records.map((key) => key.keySpec)).toEqual(['HMAC_256']);
      });

      test('allMaterials holds the versions of provisioned keys up to their current one', async () => {
        const store = await fresh();
        const rotated = await createKey(store);
        const claimed = await store.rotations.claim(rotated.keyId, 'on-demand', NOW, BUDGET);
        await store.keys.insertProvisioning(newKey(), 10);
        expect(await store.keys.materialVersions(rotated.keyId)).toEqual([1, 2]);
        // The claimed version is a rotation under way: not yet the key's.
        expect(await store.keys.allMaterials()).toEqual([{ keyId: rotated.keyId, version: 1 }]);
        expect(await store.rotations.finish(rotated.keyId, claimed!, NOW, NOW + 1)).toBe(true);
        expect(sortRefs(await store.keys.allMaterials())).toEqual(sortRefs([{ keyId: rotated.keyId, version: 1 }, { keyId: rotated.keyId, version: 2 }]));
        // A key pending import has no material in the token.
        const pending = await createKey(store, { origin: 'external', state: KEY_STATE.pendingImport, materialVersion: 0 });
        expect((await store.keys.allMaterials()).some((ref) => ref.keyId === pending.keyId)).toBe(false);
        await store.keys.update({ ...pending, state: KEY_STATE.enabled });
        expect((await store.keys.allMaterials()).some((ref) => ref.keyId === pending.keyId)).toBe(true);
      });
    });

    describe('the deletion rule at its boundary (isDestroyed is the one definition)', () => {
      test('counts, lists, dueForDeletion and grants agree with isDestroyed at the scheduled date and 1 ms either side', async () => {
        const store = await fresh();
        const when = NOW + 60_000;
        const key = await createKey(store, { state: KEY_STATE.pendingDeletion, scheduledDeletionDate: when });
        const grant = newGrant(key.keyId, { granteePrincipal: 'grantee-user', retiringPrincipal: 'retiring-user' });
        await store.grants.insert(grant, 10);
        const seen: boolean[] = [];
        for (const now of [when - 1, when, when + 1]) {
          const destroyed = isDestroyed(key, now);
          seen.push(destroyed);
          const exists = destroyed ? 0 : 1;
          expect({ now, countKeys: await store.keys.countKeys(PROJECT, now) }).toEqual({ now, countKeys: exists });
          expect({ now, listed: (await store.keys.list(PROJECT, page({ now }))).total }).toEqual({ now, listed: exists });
          expect({ now, byState: (await store.keys.countByState(now)).get(KEY_STATE.pendingDeletion) ?? 0 }).toEqual({ now, byState: exists });
          expect({ now, due: ids(await store.keys.dueForDeletion(now)) }).toEqual({ now, due: destroyed ? [key.keyId] : [] });
          expect({ now, grant: (await store.grants.get(PROJECT, grant.grantId, now)) !== undefined }).toEqual({ now, grant: !destroyed });
          expect({ now, forKey: (await store.grants.forKey(key.keyId, page({ now }))).total }).toEqual({ now, forKey: exists });
          expect({ now, retirable: (await store.grants.retirable('retiring-user', page({ now }))).total }).toEqual({ now, retirable: exists });
          const naming = await store.grants.naming(PROJECT, key.keyId, { principalId: 'grantee-user', projectId: 'elsewhere' }, now);
          expect({ now, naming: naming.length }).toEqual({ now, naming: exists });
          expect({ now, most: await store.grants.mostOnAKey(PROJECT, now) }).toEqual({ now, most: exists });
          // get is the caller's to filter (it reads the record to say why a key is gone).
          expect(await store.keys.get(PROJECT, key.keyId)).toEqual(key);
        }
        expect(seen).toEqual([false, true, true]);
      });

      test("the project quota does not count a key destroyed at the new key's creation date", async () => {
        const store = await fresh();
        const when = NOW + 60_000;
        await createKey(store, { state: KEY_STATE.pendingDeletion, scheduledDeletionDate: when });
        await expect(store.keys.insertProvisioning(newKey({ creationDate: when - 1 }), 1)).rejects.toBeInstanceOf(QuotaExceededError);
        await store.keys.insertProvisioning(newKey({ creationDate: when }), 1);
      });

      test('a key not pending deletion is never due, whatever its date', async () => {
        const store = await fresh();
        const key = await createKey(store, { state: KEY_STATE.disabled, scheduledDeletionDate: NOW });
        expect(await store.keys.dueForDeletion(NOW + 1)).toEqual([]);
        expect(await store.keys.countKeys(PROJECT, NOW + 1)).toBe(1);
        expect(isDestroyed(key, NOW + 1)).toBe(false);
      });
    });

    describe('quotas under concurrency', () => {
      test('concurrent creations through two instances never overshoot the project quota', async () => {
        const a = await fresh();
        const b = await another(a);
        const max = 5;
        const attempts = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? a : b).keys.insertProvisioning(newKey(), max));
        const results = await Promise.allSettled(attempts);
        const refused = results.filter((result) => result.status === 'rejected');
        for (const result of refused) expect(result.reason).toBeInstanceOf(QuotaExceededError);
        expect(results.length - refused.length).toBe(max);
        expect(await a.keys.countKeys(PROJECT, NOW)).toBe(max);
      });

      test('concurrent grants through two instances never overshoot the per-key quota', async () => {
        const a = await fresh();
        const b = await another(a);
        const key = await createKey(a);
        const max = 4;
        const results = await Promise.allSettled(Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? a : b).grants.insert(newGrant(key.keyId), max)));
        const refused = results.filter((result) => result.status === 'rejected');
        for (const result of refused) expect(result.reason).toBeInstanceOf(GrantQuotaExceededError);
        expect(results.length - refused.length).toBe(max);
        expect((await b.grants.forKey(key.keyId, page())).total).toBe(max);
      });
    });

    describe('grants', () => {
      test("a grant reads back with its key's project, only within that project", async () => {
        const store = await fresh();
        const key = await createKey(store);
        const grant = newGrant(key.keyId, { name: 'ünïcode', operations: ['create-datakey', 'decrypt-datakey'] });
        await store.grants.insert(grant, 10);
        expect(await store.grants.get(PROJECT, grant.grantId, NOW)).toEqual({ ...grant, projectId: PROJECT });
        expect(await store.grants.get(OTHER_PROJECT, grant.grantId, NOW)).toBeUndefined();
        expect(await store.grants.get(PROJECT, randomBytes(32).toString('hex'), NOW)).toBeUndefined();
      });

      test('a grant on a key that is gone, or on a grant that is gone, is refused', async () => {
        const store = await fresh();
        await expect(store.grants.insert(newGrant(randomUUID()), 10)).rejects.toBeInstanceOf(GrantKeyGoneError);
        const key = await createKey(store);
        await expect(store.grants.insert(newGrant(key.keyId, { parentGrantId: randomBytes(32).toString('hex') }), 10)).rejects.toBeInstanceOf(GrantParentGoneError);
        expect((await store.grants.forKey(key.keyId, page())).total).toBe(0);
      });

      test('removing a grant removes every grant made on its authority, recursively, once', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const root = newGrant(key.keyId);
        const child = newGrant(key.keyId, { parentGrantId: root.grantId });
        const grandchild = newGrant(key.keyId, { parentGrantId: child.grantId });
        const sibling = newGrant(key.keyId);
        for (const grant of [root, child, grandchild, sibling]) await store.grants.insert(grant, 10);

        const result = await store.grants.removeWithDescendants(root.grantId);
        expect(result.removed).toBe(true);
        expect([...result.cascaded].sort((x, y) => x.grantId.localeCompare(y.grantId))).toEqual(
          [
            { grantId: child.grantId, parentGrantId: root.grantId },
            { grantId: grandchild.grantId, parentGrantId: child.grantId },
          ].sort((x, y) => x.grantId.localeCompare(y.grantId)),
        );
        expect(ids((await store.grants.forKey(key.keyId, page())).records)).toEqual([sibling.grantId]);
        expect(await store.grants.removeWithDescendants(root.grantId)).toEqual({ removed: false, cascaded: [] });
        expect(await store.grants.removeWithDescendants(child.grantId)).toEqual({ removed: false, cascaded: [] });
      });

      test('forKey, retirable, naming and mostOnAKey', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const other = await createKey(store);
        const elsewhere = await createKey(store, { projectId: OTHER_PROJECT });
        const made: GrantRecord[] = [];
        for (let i = 0; i < 3; i++) {
          const grant = { ...newGrant(key.keyId, { creationDate: NOW + 10 - i, retiringPrincipal: 'retirer' }), projectId: PROJECT };
          await store.grants.insert(grant, 10);
          made.unshift(grant);
        }
        const toUser = newGrant(other.keyId, { granteePrincipal: 'alice', granteeType: 'user', retiringPrincipal: null });
        const toDomain = newGrant(other.keyId, { granteePrincipal: 'project-of-bob', granteeType: 'domain', retiringPrincipal: null });
        const retiredBy = newGrant(other.keyId, { granteePrincipal: 'carol', retiringPrincipal: 'bob' });
        const elsewhereGrant = newGrant(elsewhere.keyId, { retiringPrincipal: 'retirer' });
        for (const grant of [toUser, toDomain, retiredBy, elsewhereGrant]) await store.grants.insert(grant, 10);

        const forKey = await store.grants.forKey(key.keyId, page({ offset: 1, limit: 1 }));
        expect(forKey.total).toBe(3);
        expect(forKey.records).toEqual([made[1]]);
        const retirable = await store.grants.retirable('retirer', page());
        expect(retirable.total).toBe(4);
        expect(retirable.records.map((grant) => grant.projectId).sort()).toEqual([PROJECT, PROJECT, PROJECT, OTHER_PROJECT].sort());

        const naming = (principal: { principalId: string; projectId: string }): Promise<GrantRecord[]> => store.grants.naming(PROJECT, other.keyId, principal, NOW);
        expect(ids(await naming({ principalId: 'alice', projectId: 'unrelated' }))).toEqual([toUser.grantId]);
        // A domain grant names every credential of the project; a user grant is not matched by project.
        expect(ids(await naming({ principalId: 'bob', projectId: 'project-of-bob' })).sort()).toEqual([toDomain.grantId, retiredBy.grantId].sort());
        expect(await naming({ principalId: 'project-of-bob', projectId: 'unrelated' })).toEqual([]);
        expect(await naming({ principalId: 'nobody', projectId: 'alice' })).toEqual([]);
        expect(await store.grants.naming(OTHER_PROJECT, other.keyId, { principalId: 'alice', projectId: 'x' }, NOW)).toEqual([]);

        expect(await store.grants.mostOnAKey(PROJECT, NOW)).toBe(3);
        expect(await store.grants.mostOnAKey(OTHER_PROJECT, NOW)).toBe(1);
        expect(await store.grants.mostOnAKey('empty-project', NOW)).toBe(0);
      });
    });

    describe('aliases', () => {
      test('an alias reads back within its project only; a taken alias, a key that is gone or of another project is refused', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const other = await createKey(store);
        const elsewhere = await createKey(store, { projectId: OTHER_PROJECT });
        const alias = newAlias(key.keyId);
        await store.aliases.insert(alias, 10);
        expect(await store.aliases.get(PROJECT, alias.alias)).toEqual(alias);
        expect(await store.aliases.get(OTHER_PROJECT, alias.alias)).toBeUndefined();
        await expect(store.aliases.insert({ ...alias, createTime: NOW + 5 }, 10)).rejects.toBeInstanceOf(AliasTakenError);
        await expect(store.aliases.insert({ ...alias, keyId: other.keyId }, 10)).rejects.toBeInstanceOf(AliasTakenError);
        await expect(store.aliases.insert(newAlias(randomUUID()), 10)).rejects.toBeInstanceOf(AliasKeyGoneError);
        await expect(store.aliases.insert(newAlias(elsewhere.keyId), 10)).rejects.toBeInstanceOf(AliasKeyGoneError);
        // The same name in another project is another alias.
        const there = newAlias(elsewhere.keyId, { projectId: OTHER_PROJECT, alias: alias.alias });
        await store.aliases.insert(there, 10);
        expect(await store.aliases.get(OTHER_PROJECT, alias.alias)).toEqual(there);
        expect(await store.aliases.get(PROJECT, alias.alias)).toEqual(alias);
      });

      test('a key holds at most maxPerKey aliases, also when two instances add them at once; an alias added twice at once is taken once', async () => {
        const a = await fresh();
        const b = await another(a);
        const key = await createKey(a);
        const max = 3;
        const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).aliases.insert(newAlias(key.keyId), max)));
        const refused = results.filter((result) => result.status === 'rejected');
        for (const result of refused) expect(result.reason).toBeInstanceOf(AliasQuotaExceededError);
        expect(results.length - refused.length).toBe(max);
        expect(await b.aliases.list(PROJECT, { keyId: key.keyId, limit: 100, now: NOW })).toHaveLength(max);

        const one = await createKey(a);
        const two = await createKey(a);
        const same = newAlias(one.keyId);
        const raced = await Promise.allSettled([a.aliases.insert(same, 10), b.aliases.insert({ ...same, keyId: two.keyId }, 10)]);
        expect(raced.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
        for (const result of raced) if (result.status === 'rejected') expect(result.reason).toBeInstanceOf(AliasTakenError);
      });

      test('associate moves an alias to another key of its project, counted against that key; the same key changes nothing', async () => {
        const store = await fresh();
        const from = await createKey(store);
        const to = await createKey(store);
        const full = await createKey(store);
        const alias = newAlias(from.keyId);
        await store.aliases.insert(alias, 10);
        await store.aliases.insert(newAlias(full.keyId), 1);

        expect(await store.aliases.associate(PROJECT, alias.alias, from.keyId, NOW + 50, 10)).toEqual({ previousKeyId: from.keyId, record: alias });
        const moved = { ...alias, keyId: to.keyId, updateTime: NOW + 100 };
        expect(await store.aliases.associate(PROJECT, alias.alias, to.keyId, NOW + 100, 10)).toEqual({ previousKeyId: from.keyId, record: moved });
        expect(await store.aliases.get(PROJECT, alias.alias)).toEqual(moved);
        expect(await store.aliases.list(PROJECT, { keyId: from.keyId, limit: 10, now: NOW })).toEqual([]);

        await expect(store.aliases.associate(PROJECT, alias.alias, full.keyId, NOW + 200, 1)).rejects.toBeInstanceOf(AliasQuotaExceededError);
        await expect(store.aliases.associate(PROJECT, alias.alias, randomUUID(), NOW + 200, 10)).rejects.toBeInstanceOf(AliasKeyGoneError);
        const elsewhere = await createKey(store, { projectId: OTHER_PROJECT });
        await expect(store.aliases.associate(PROJECT, alias.alias, elsewhere.keyId, NOW + 200, 10)).rejects.toBeInstanceOf(AliasKeyGoneError);
        expect(await store.aliases.get(PROJECT, alias.alias)).toEqual(moved);
        expect(await store.aliases.associate(PROJECT, 'alias/none', to.keyId, NOW, 10)).toBeUndefined();
        expect(await store.aliases.associate(OTHER_PROJECT, alias.alias, elsewhere.keyId, NOW, 10)).toBeUndefined();
      });

      test("remove takes a key's aliases all or none", async () => {
        const store = await fresh();
        const key = await createKey(store);
        const other = await createKey(store);
        const [x, y] = [newAlias(key.keyId), newAlias(key.keyId)];
        const theirs = newAlias(other.keyId);
        for (const alias of [x, y, theirs]) await store.aliases.insert(alias, 10);

        const refusal = await store.aliases.remove(PROJECT, key.keyId, [x.alias, theirs.alias, 'alias/none']).catch((error: unknown) => error);
        expect(refusal).toBeInstanceOf(AliasNotHeldError);
        expect((refusal as AliasNotHeldError).aliases).toEqual([theirs.alias, 'alias/none']);
        expect(await store.aliases.get(PROJECT, x.alias)).toEqual(x);

        await store.aliases.remove(PROJECT, key.keyId, [x.alias, y.alias, x.alias]);
        expect(await store.aliases.list(PROJECT, { limit: 10, now: NOW })).toEqual([theirs]);
        await expect(store.aliases.remove(OTHER_PROJECT, other.keyId, [theirs.alias])).rejects.toBeInstanceOf(AliasNotHeldError);
      });

      test('list pages in alias order, by key or for the project, and leaves out aliases of keys gone; aliases go with their key', async () => {
        const store = await fresh();
        const when = NOW + 60_000;
        const key = await createKey(store);
        const leaving = await createKey(store, { state: KEY_STATE.pendingDeletion, scheduledDeletionDate: when });
        const made = [
          newAlias(key.keyId, { alias: 'alias/b' }),
          newAlias(key.keyId, { alias: 'alias/B' }),
          newAlias(key.keyId, { alias: 'alias/a-z' }),
          newAlias(leaving.keyId, { alias: 'alias/a' }),
          newAlias(key.keyId, { alias: 'alias/a/b' }),
        ];
        for (const alias of made) await store.aliases.insert(alias, 10);
        const names = (records: AliasRecord[]): string[] => records.map((record) => record.alias);
        // Byte order: upper case before lower, '-' before '/'.
        expect(names(await store.aliases.list(PROJECT, { limit: 10, now: NOW }))).toEqual(['alias/B', 'alias/a', 'alias/a-z', 'alias/a/b', 'alias/b']);
        expect(names(await store.aliases.list(PROJECT, { limit: 2, after: 'alias/a', now: NOW }))).toEqual(['alias/a-z', 'alias/a/b']);
        expect(names(await store.aliases.list(PROJECT, { keyId: key.keyId, after: 'alias/B', limit: 10, now: NOW }))).toEqual(['alias/a-z', 'alias/a/b', 'alias/b']);
        expect(await store.aliases.list(OTHER_PROJECT, { limit: 10, now: NOW })).toEqual([]);
        // The deletion rule at its boundary: gone at its date, though get still reads it.
        expect(names(await store.aliases.list(PROJECT, { keyId: leaving.keyId, limit: 10, now: when - 1 }))).toEqual(['alias/a']);
        expect(await store.aliases.list(PROJECT, { keyId: leaving.keyId, limit: 10, now: when })).toEqual([]);
        expect(await store.aliases.get(PROJECT, 'alias/a')).toEqual(made[3]);

        await store.keys.remove(leaving.keyId);
        expect(await store.aliases.get(PROJECT, 'alias/a')).toBeUndefined();
        await store.keys.remove(key.keyId);
        expect(await store.aliases.list(PROJECT, { limit: 10, now: NOW })).toEqual([]);
      });

      test('aliases written in a transaction that rolls back are not kept', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const alias = newAlias(key.keyId);
        await expect(
          store.withTransaction(async (tx) => {
            await tx.aliases.insert(alias, 10);
            expect(await tx.aliases.get(PROJECT, alias.alias)).toEqual(alias);
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        expect(await store.aliases.get(PROJECT, alias.alias)).toBeUndefined();
      });
    });

    describe('rotation', () => {
      test("a key never configured has rotation off; settings are written for a key that exists, skipped for one that is gone", async () => {
        const store = await fresh();
        const key = await createKey(store);
        expect(await store.rotations.state(key.keyId)).toEqual(ROTATION_OFF);
        await store.rotations.setSettings(key.keyId, { enabled: true, intervalDays: 30, nextRotationAt: NOW + 5 });
        expect(await store.rotations.state(key.keyId)).toEqual({ enabled: true, intervalDays: 30, nextRotationAt: NOW + 5, lastRotationAt: null });
        const gone = randomUUID();
        await store.rotations.setSettings(gone, { enabled: true, intervalDays: 30, nextRotationAt: NOW });
        expect(await store.rotations.state(gone)).toEqual(ROTATION_OFF);
      });

      test('an on-demand claim makes the next version; finish makes it current and schedules the next', async () => {
        const store = await fresh();
        const key = await createKey(store);
        await store.rotations.setSettings(key.keyId, { enabled: true, intervalDays: 30, nextRotationAt: NOW + 1_000_000 });
        const version = await store.rotations.claim(key.keyId, 'on-demand', NOW, BUDGET);
        expect(version).toBe(2);
        expect(await store.rotations.claim(key.keyId, 'on-demand', NOW, BUDGET)).toBeUndefined();
        expect(await store.keys.materialVersions(key.keyId)).toEqual([1, 2]);
        expect((await store.rotations.materials(key.keyId)).map((usage) => usage.version)).toEqual([1]);
        expect(await store.rotations.claimedBefore(NOW)).toEqual([{ keyId: key.keyId, projectId: PROJECT, version: 2, claimedAt: NOW }]);
        expect(await store.rotations.claimedBefore(NOW - 1)).toEqual([]);
        expect((await store.keys.get(PROJECT, key.keyId))?.materialVersion).toBe(1);

        expect(await store.rotations.finish(key.keyId, 2, NOW - 1, NOW + 7)).toBe(false); // not this claim
        expect(await store.rotations.finish(key.keyId, 2, NOW, NOW + 7)).toBe(true);
        expect(await store.rotations.finish(key.keyId, 2, NOW, NOW + 8)).toBe(false); // once
        expect((await store.keys.get(PROJECT, key.keyId))?.materialVersion).toBe(2);
        expect(await store.rotations.state(key.keyId)).toEqual({
          enabled: true,
          intervalDays: 30,
          lastRotationAt: NOW + 7,
          nextRotationAt: nextRotationAfter({ enabled: true, intervalDays: 30 }, NOW + 7),
        });
        expect(await store.rotations.claimedBefore(NOW + 100)).toEqual([]);
        expect((await store.rotations.materials(key.keyId)).map((usage) => usage.version)).toEqual([1, 2]);
        expect(await store.rotations.claim(key.keyId, 'on-demand', NOW + 8, BUDGET)).toBe(3);
      });

      test('finish with rotation off leaves no next rotation', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const version = await store.rotations.claim(key.keyId, 'on-demand', NOW, BUDGET);
        expect(await store.rotations.finish(key.keyId, version!, NOW, NOW + 1)).toBe(true);
        expect(await store.rotations.state(key.keyId)).toEqual({ ...ROTATION_OFF, lastRotationAt: NOW + 1 });
      });

      test('rollBack forgets the claimed version and releases the claim; never a current version', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const version = await store.rotations.claim(key.keyId, 'on-demand', NOW, BUDGET);
        await store.rotations.rollBack(key.keyId, version!);
        expect(await store.keys.materialVersions(key.keyId)).toEqual([1]);
        expect(await store.rotations.claimedBefore(NOW)).toEqual([]);
        expect(await store.rotations.finish(key.keyId, version!, NOW, NOW + 1)).toBe(false);
        expect(await store.rotations.claim(key.keyId, 'on-demand', NOW + 2, BUDGET)).toBe(version);
        await store.rotations.rollBack(key.keyId, 1);
        expect(await store.keys.materialVersions(key.keyId)).toEqual([1, 2]);
      });

      test('a scheduled claim needs rotation on, its date come, and the key enabled; due lists exactly those', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const disabled = await createKey(store, { state: KEY_STATE.disabled });
        const due = NOW + 500;
        for (const k of [key, disabled]) await store.rotations.setSettings(k.keyId, { enabled: true, intervalDays: 1, nextRotationAt: due });
        const off = await createKey(store);
        await store.rotations.setSettings(off.keyId, { enabled: false, intervalDays: 1, nextRotationAt: due });

        expect(await store.rotations.due(due - 1)).toEqual([]);
        expect(await store.rotations.due(due)).toEqual([{ keyId: key.keyId, projectId: PROJECT }]);
        expect(await store.rotations.claim(key.keyId, 'scheduled', due - 1, BUDGET)).toBeUndefined();
        expect(await store.rotations.claim(disabled.keyId, 'scheduled', due, BUDGET)).toBeUndefined();
        expect(await store.rotations.claim(off.keyId, 'scheduled', due, BUDGET)).toBeUndefined();
        expect(await store.rotations.claim(key.keyId, 'scheduled', due, BUDGET)).toBe(2);
        expect(await store.rotations.due(due)).toEqual([]); // under way
        // On demand, a disabled key rotates too.
        expect(await store.rotations.claim(disabled.keyId, 'on-demand', due, BUDGET)).toBe(2);
      });

      test('seals: counted, read, and the budget claim', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const quiet = await createKey(store);
        await store.rotations.addSeals([
          { keyId: key.keyId, version: 1, count: 5 },
          { keyId: key.keyId, version: 1, count: 2 },
          { keyId: quiet.keyId, version: 1, count: 1 },
          { keyId: key.keyId, version: 99, count: 1000 }, // a version gone: skipped
        ]);
        await store.rotations.addSeals([]);
        expect(await store.rotations.materials(key.keyId)).toEqual([{ version: 1, createdAt: key.creationDate, seals: 7 }]);
        expect(await store.rotations.mostSeals()).toBe(7);
        expect(await store.rotations.overBudget(7)).toEqual([{ keyId: key.keyId, projectId: PROJECT }]);
        expect(await store.rotations.overBudget(8)).toEqual([]);
        expect(await store.rotations.claim(key.keyId, 'budget', NOW, 8)).toBeUndefined();
        expect(await store.rotations.claim(key.keyId, 'budget', NOW, 7)).toBe(2);
        await store.keys.update({ ...quiet, state: KEY_STATE.disabled });
        expect(await store.rotations.overBudget(1)).toEqual([{ keyId: key.keyId, projectId: PROJECT }]);
        // Imported material cannot be made anew: an external key is never a budget rotation's.
        const imported = await createKey(store, { origin: 'external' });
        await store.rotations.addSeals([{ keyId: imported.keyId, version: 1, count: 50 }]);
        expect(await store.rotations.overBudget(1)).toEqual([{ keyId: key.keyId, projectId: PROJECT }]);
      });

      test('of many claims at once through two instances, exactly one gets the rotation', async () => {
        const a = await fresh();
        const b = await another(a);
        const key = await createKey(a);
        const claims = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).rotations.claim(key.keyId, 'on-demand', NOW + i, BUDGET)));
        expect(claims.filter((version) => version !== undefined)).toEqual([2]);
        expect(await b.keys.materialVersions(key.keyId)).toEqual([1, 2]);
      });
    });

    describe('tags', () => {
      test('tags read back in code point order; keys are exact (case-sensitive), a put replaces a value, empty values and odd characters kept', async () => {
        const store = await fresh();
        const key = await createKey(store);
        await store.tags.put(key.keyId, [{ key: 'team', value: 'billing' }, { key: 'Team', value: '' }, { key: '环境', value: '生产' }, { key: "o'd%_\"", value: '[]{}' }], 10);
        await store.tags.put(key.keyId, [{ key: 'team', value: 'payments' }, { key: 'é', value: 'x' }], 10);
        expect(await store.tags.forKey(key.keyId)).toEqual([
          { key: 'Team', value: '' },
          { key: "o'd%_\"", value: '[]{}' },
          { key: 'team', value: 'payments' },
          { key: 'é', value: 'x' },
          { key: '环境', value: '生产' },
        ]);
        expect(await store.tags.forKey(randomUUID())).toEqual([]);
      });

      test('a put that would pass the limit writes nothing; replacing a value does not count twice', async () => {
        const store = await fresh();
        const key = await createKey(store);
        await store.tags.put(key.keyId, [{ key: 'a', value: '1' }, { key: 'b', value: '2' }], 3);
        await expect(store.tags.put(key.keyId, [{ key: 'a', value: 'changed' }, { key: 'c', value: '3' }, { key: 'd', value: '4' }], 3)).rejects.toBeInstanceOf(TagLimitExceededError);
        expect(await store.tags.forKey(key.keyId)).toEqual([{ key: 'a', value: '1' }, { key: 'b', value: '2' }]);
        await store.tags.put(key.keyId, [{ key: 'a', value: 'changed' }, { key: 'b', value: '2' }, { key: 'c', value: '3' }], 3);
        expect((await store.tags.forKey(key.keyId)).map((tag) => tag.value)).toEqual(['changed', '2', '3']);
      });

      test('concurrent puts through two instances never pass the per-key limit', async () => {
        const a = await fresh();
        const b = await another(a);
        const key = await createKey(a);
        const max = 4;
        const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).tags.put(key.keyId, [{ key: `k${i}`, value: 'v' }], max)));
        const refused = results.filter((result) => result.status === 'rejected');
        for (const result of refused) expect(result.reason).toBeInstanceOf(TagLimitExceededError);
        expect(results.length - refused.length).toBe(max);
        expect(await b.tags.forKey(key.keyId)).toHaveLength(max);
      });

      test('tags go with their key; a put on a key that is gone is TagKeyGoneError', async () => {
        const store = await fresh();
        const key = await createKey(store);
        await store.tags.put(key.keyId, [{ key: 'team', value: 'x' }], 10);
        await store.keys.remove(key.keyId);
        expect(await store.tags.forKey(key.keyId)).toEqual([]);
        await expect(store.tags.put(key.keyId, [{ key: 'team', value: 'x' }], 10)).rejects.toBeInstanceOf(TagKeyGoneError);
        await expect(store.tags.put(randomUUID(), [{ key: 'team', value: 'x' }], 10)).rejects.toBeInstanceOf(TagKeyGoneError);
      });

      test('remove: by key, or by key and value; what is not there is skipped and not counted', async () => {
        const store = await fresh();
        const key = await createKey(store);
        await store.tags.put(key.keyId, [{ key: 'a', value: '1' }, { key: 'b', value: '2' }, { key: 'c', value: '' }], 10);
        expect(await store.tags.remove(key.keyId, [{ key: 'b', value: 'not-2' }, { key: 'missing' }])).toBe(0);
        expect(await store.tags.remove(key.keyId, [{ key: 'a' }, { key: 'b', value: '2' }, { key: 'c', value: '' }])).toBe(3);
        expect(await store.tags.forKey(key.keyId)).toEqual([]);
      });

      test("projectTags: the project's existing keys' tag keys with their distinct values, in code point order", async () => {
        const store = await fresh();
        const one = await createKey(store);
        const two = await createKey(store);
        const gone = await createKey(store, { state: KEY_STATE.pendingDeletion, scheduledDeletionDate: NOW });
        const leaving = await createKey(store, { state: KEY_STATE.pendingDeletion, scheduledDeletionDate: NOW + 1 });
        const elsewhere = await createKey(store, { projectId: OTHER_PROJECT });
        const creating = newKey();
        await store.keys.insertProvisioning(creating, 1000);
        await store.tags.put(one.keyId, [{ key: 'team', value: 'b' }, { key: 'env', value: 'prod' }], 10);
        await store.tags.put(two.keyId, [{ key: 'team', value: 'a' }, { key: 'env', value: 'prod' }], 10);
        await store.tags.put(gone.keyId, [{ key: 'team', value: 'gone' }, { key: 'only-gone', value: 'x' }], 10);
        await store.tags.put(leaving.keyId, [{ key: 'team', value: 'leaving' }], 10);
        await store.tags.put(elsewhere.keyId, [{ key: 'team', value: 'other' }], 10);
        await store.tags.put(creating.keyId, [{ key: 'creating', value: 'x' }], 10);
        expect(await store.tags.projectTags(PROJECT, NOW)).toEqual([
          { key: 'env', values: ['prod'] },
          { key: 'team', values: ['a', 'b', 'leaving'] },
        ]);
        expect(await store.tags.projectTags('empty-project', NOW)).toEqual([]);
      });

      test('find and count: values of one tag key OR, tag keys AND, no values any value; the alias fragment ignores ASCII case', async () => {
        const store = await fresh();
        const alpha = await createKey(store, { alias: 'Orders-Alpha', creationDate: NOW - 3 });
        const beta = await createKey(store, { alias: 'orders-beta', creationDate: NOW - 2 });
        const gamma = await createKey(store, { alias: 'invoices', creationDate: NOW - 1 });
        const gone = await createKey(store, { alias: 'orders-gone', state: KEY_STATE.pendingDeletion, scheduledDeletionDate: NOW });
        const elsewhere = await createKey(store, { alias: 'orders-elsewhere', projectId: OTHER_PROJECT });
        await store.tags.put(alpha.keyId, [{ key: 'team', value: 'billing' }, { key: 'env', value: 'prod' }], 10);
        await store.tags.put(beta.keyId, [{ key: 'team', value: 'payments' }, { key: 'env', value: 'test' }], 10);
        await store.tags.put(gamma.keyId, [{ key: 'team', value: 'billing' }], 10);
        await store.tags.put(gone.keyId, [{ key: 'team', value: 'billing' }, { key: 'env', value: 'prod' }], 10);
        await store.tags.put(elsewhere.keyId, [{ key: 'team', value: 'billing' }, { key: 'env', value: 'prod' }], 10);
        const found = async (tags: { key: string; values: string[] }[], nameContains?: string): Promise<string[]> => {
          const filter = { tags, now: NOW, ...(nameContains === undefined ? {} : { nameContains }) };
          const { keys, total } = await store.tags.find(PROJECT, filter, { offset: 0, limit: 100 });
          expect(await store.tags.count(PROJECT, filter)).toBe(total);
          expect(keys).toHaveLength(total);
          return keys.map((key) => key.record.alias);
        };
        expect(await found([{ key: 'team', values: ['billing'] }])).toEqual(['Orders-Alpha', 'invoices']);
        expect(await found([{ key: 'team', values: ['billing', 'payments'] }])).toEqual(['Orders-Alpha', 'orders-beta', 'invoices']);
        expect(await found([{ key: 'team', values: ['billing', 'payments'] }, { key: 'env', values: ['prod'] }])).toEqual(['Orders-Alpha']);
        expect(await found([{ key: 'env', values: [] }])).toEqual(['Orders-Alpha', 'orders-beta']);
        expect(await found([{ key: 'Team', values: [] }])).toEqual([]);
        expect(await found([{ key: 'team', values: ['Billing'] }])).toEqual([]);
        expect(await found([])).toEqual(['Orders-Alpha', 'orders-beta', 'invoices']);
        expect(await found([], 'orders')).toEqual(['Orders-Alpha', 'orders-beta']);
        expect(await found([{ key: 'team', values: ['billing'] }], 'alpha')).toEqual(['Orders-Alpha']);
        expect(await found([], 'orders-b')).toEqual(['orders-beta']);
        expect(await found([], '%')).toEqual([]);
        // A found key comes with its record and all its tags.
        const { keys } = await store.tags.find(PROJECT, { tags: [{ key: 'env', values: ['prod'] }], now: NOW }, { offset: 0, limit: 10 });
        expect(keys).toEqual([{ record: alpha, tags: [{ key: 'env', value: 'prod' }, { key: 'team', value: 'billing' }] }]);
      });

      test('find pages oldest first; total counts every key found', async () => {
        const store = await fresh();
        const made: KeyRecord[] = [];
        for (let i = 0; i < 5; i++) {
          // Two of equal dates: the order of creation decides between them.
          const key = await createKey(store, { creationDate: NOW - 10 + Math.min(i, 3) });
          await store.tags.put(key.keyId, [{ key: 'batch', value: i % 2 === 0 ? 'even' : 'odd' }], 10);
          made.push(key);
        }
        const filter = { tags: [{ key: 'batch', values: ['even', 'odd'] }], now: NOW };
        const first = await store.tags.find(PROJECT, filter, { offset: 0, limit: 2 });
        const second = await store.tags.find(PROJECT, filter, { offset: 2, limit: 2 });
        const last = await store.tags.find(PROJECT, filter, { offset: 4, limit: 2 });
        const beyond = await store.tags.find(PROJECT, filter, { offset: 9, limit: 2 });
        expect([first, second, last, beyond].map((page) => page.total)).toEqual([5, 5, 5, 5]);
        expect([...first.keys, ...second.keys, ...last.keys].map((key) => key.record.keyId)).toEqual(ids(made));
        expect(beyond.keys).toEqual([]);
      });
    });

    describe('credentials', () => {
      test('insert, read by id and token hash, list, enable, remove, count', async () => {
        const store = await fresh();
        const aksk = newCredential({ kind: 'aksk', sealedSecret: randomBytes(60), tokenHash: null, createdAt: NOW + 1 });
        const token = newCredential({ kind: 'token', sealedSecret: null, tokenHash: randomBytes(32).toString('hex'), createdAt: NOW + 2, expiresAt: NOW + 1000 });
        const other = newCredential({ projectId: OTHER_PROJECT, createdAt: NOW });
        for (const credential of [aksk, token, other]) await store.credentials.insert(credential);

        expect(await store.credentials.get(aksk.id)).toEqual({ ...aksk, enabled: true });
        expect(await store.credentials.getByTokenHash(token.tokenHash!)).toEqual({ ...token, enabled: true });
        expect(await store.credentials.get('missing')).toBeUndefined();
        expect(await store.credentials.getByTokenHash('0'.repeat(64))).toBeUndefined();
        expect((await store.credentials.list()).map((credential) => credential.id)).toEqual([other.id, aksk.id, token.id]);
        expect((await store.credentials.list(PROJECT)).map((credential) => credential.id)).toEqual([aksk.id, token.id]);
        expect(await store.credentials.count()).toBe(3);

        expect(await store.credentials.setEnabled(aksk.id, false)).toBe(true);
        expect((await store.credentials.get(aksk.id))?.enabled).toBe(false);
        expect(await store.credentials.setEnabled(aksk.id, true)).toBe(true);
        expect((await store.credentials.get(aksk.id))?.enabled).toBe(true);
        expect(await store.credentials.setEnabled('missing', false)).toBe(false);

        expect(await store.credentials.remove(token.id)).toBe(true);
        expect(await store.credentials.remove(token.id)).toBe(false);
        expect(await store.credentials.getByTokenHash(token.tokenHash!)).toBeUndefined();
        expect(await store.credentials.count()).toBe(2);
      });

      test('a credential issued through one instance is read by another', async () => {
        const a = await fresh();
        const b = await another(a);
        const credential = newCredential();
        await a.credentials.insert(credential);
        expect(await b.credentials.get(credential.id)).toEqual({ ...credential, enabled: true });
        await b.credentials.setEnabled(credential.id, false);
        expect((await a.credentials.get(credential.id))?.enabled).toBe(false);
      });
    });

    describe('imports', () => {
      test("a key's import record is written, replaced, read from another instance, and goes with its key", async () => {
        const a = await fresh();
        const b = await another(a);
        const key = await createKey(a);
        expect(await a.imports.get(key.keyId)).toBeUndefined();
        const fingerprint = randomBytes(16);
        await a.imports.put({ keyId: key.keyId, wrappingExpiresAt: NOW + 10, fingerprint: null, imported: false, materialExpiresAt: null });
        await a.imports.put({ keyId: key.keyId, wrappingExpiresAt: null, fingerprint, imported: true, materialExpiresAt: NOW + 20 });
        expect(await b.imports.get(key.keyId)).toEqual({ keyId: key.keyId, wrappingExpiresAt: null, fingerprint, imported: true, materialExpiresAt: NOW + 20 });
        expect(await b.withTransaction((tx) => tx.imports.get(key.keyId, { lock: true }))).toMatchObject({ imported: true });
        // A key removed takes its record along; a record for a key that is gone is not written.
        await a.keys.remove(key.keyId);
        expect(await b.imports.get(key.keyId)).toBeUndefined();
        await a.imports.put({ keyId: key.keyId, wrappingExpiresAt: NOW, fingerprint: null, imported: false, materialExpiresAt: null });
        expect(await b.imports.get(key.keyId)).toBeUndefined();
      });

      test('expired wrapping keys, and expired material of enabled or disabled keys only, are listed', async () => {
        const store = await fresh();
        const [wrapping, enabled, disabled, pendingDeletion, notImported, later] = [await createKey(store), await createKey(store), await createKey(store), await createKey(store), await createKey(store), await createKey(store)];
        await store.keys.update({ ...disabled!, state: KEY_STATE.disabled });
        await store.keys.update({ ...pendingDeletion!, state: KEY_STATE.pendingDeletion, scheduledDeletionDate: NOW + 1000 });
        const put = (keyId: string, record: { wrappingExpiresAt?: number; imported?: boolean; materialExpiresAt?: number }) =>
          store.imports.put({ keyId, wrappingExpiresAt: record.wrappingExpiresAt ?? null, fingerprint: null, imported: record.imported ?? false, materialExpiresAt: record.materialExpiresAt ?? null });
        await put(wrapping!.keyId, { wrappingExpiresAt: NOW });
        for (const key of [enabled!, disabled!, pendingDeletion!]) await put(key.keyId, { imported: true, materialExpiresAt: NOW - 1 });
        await put(notImported!.keyId, { imported: false, materialExpiresAt: NOW - 1 });
        await put(later!.keyId, { wrappingExpiresAt: NOW + 1, imported: true, materialExpiresAt: NOW + 1 });
        expect(await store.imports.wrappingExpired(NOW)).toEqual([{ keyId: wrapping!.keyId, projectId: wrapping!.projectId }]);
        expect((await store.imports.materialExpired(NOW)).map((due) => due.keyId).sort()).toEqual([enabled!.keyId, disabled!.keyId].sort());
      });
    });

    describe('audit checkpoints', () => {
      test("each instance's latest checkpoint is kept", async () => {
        const a = await fresh();
        const b = await another(a);
        await a.auditCheckpoints.record({ instance: 'one', records: 10, head: 'a'.repeat(64), at: NOW });
        await b.auditCheckpoints.record({ instance: 'two', records: 3, head: 'b'.repeat(64), at: NOW + 1 });
        await a.auditCheckpoints.record({ instance: 'one', records: 12, head: 'c'.repeat(64), at: NOW + 2 });
        const all = (await b.auditCheckpoints.all()).sort((x, y) => x.instance.localeCompare(y.instance));
        expect(all).toEqual([
          { instance: 'one', records: 12, head: 'c'.repeat(64), at: NOW + 2 },
          { instance: 'two', records: 3, head: 'b'.repeat(64), at: NOW + 1 },
        ]);
      });
    });

    describe('transactions', () => {
      test('what a transaction writes is seen by others only once it commits', async () => {
        const a = await fresh();
        const b = await another(a);
        const key = await createKey(a);
        const result = await a.withTransaction(async (tx) => {
          const current = await tx.keys.get(PROJECT, key.keyId, { lock: true });
          await tx.keys.update({ ...current!, description: 'changed' });
          expect((await tx.keys.get(PROJECT, key.keyId))?.description).toBe('changed');
          expect((await b.keys.get(PROJECT, key.keyId))?.description).toBe(key.description);
          return 'done';
        });
        expect(result).toBe('done');
        expect((await b.keys.get(PROJECT, key.keyId))?.description).toBe('changed');
      });

      test('a transaction whose work throws is rolled back, and the error is rethrown', async () => {
        const store = await fresh();
        const key = await createKey(store);
        const failure = new Error('refused');
        const fresher = newKey();
        await expect(
          store.withTransaction(async (tx) => {
            await tx.keys.update({ ...key, state: KEY_STATE.disabled });
            await tx.keys.insertProvisioning(fresher, 10);
            await tx.grants.insert(newGrant(key.keyId), 10);
            await tx.rotations.setSettings(key.keyId, { enabled: true, intervalDays: 9, nextRotationAt: NOW });
            await tx.credentials.insert(newCredential());
            throw failure;
          }),
        ).rejects.toBe(failure);
        expect(await store.keys.get(PROJECT, key.keyId)).toEqual(key);
        expect(await store.keys.materialVersions(fresher.keyId)).toEqual([]);
        expect((await store.grants.forKey(key.keyId, page())).total).toBe(0);
        expect(await store.rotations.state(key.keyId)).toEqual(ROTATION_OFF);
        expect(await store.credentials.count()).toBe(0);
        // The store goes on working after a rollback.
        await store.withTransaction(async (tx) => tx.keys.update({ ...key, description: 'after' }));
        expect((await store.keys.get(PROJECT, key.keyId))?.description).toBe('after');
      });

      test('{ lock: true } read-modify-writes through two instances at once lose no update', async () => {
        const a = await fresh();
        const b = await another(a);
        const key = await createKey(a, { description: '0' });
        const rounds = 8;
        const increment = (store: MetadataStore): Promise<void> =>
          store.withTransaction(async (tx) => {
            const current = await tx.keys.get(PROJECT, key.keyId, { lock: true });
            await tx.keys.update({ ...current!, description: String(Number(current!.description) + 1) });
          });
        await Promise.all(Array.from({ length: rounds * 2 }, (_, i) => increment(i % 2 === 0 ? a : b)));
        expect((await a.keys.get(PROJECT, key.keyId))?.description).toBe(String(rounds * 2));
      });

      test("{ lock: true } on rotation settings loses no update, from a key's first settings on", async () => {
        const a = await fresh();
        const b = await another(a);
        const key = await createKey(a);
        const rounds = 8;
        const increment = (store: MetadataStore): Promise<void> =>
          store.withTransaction(async (tx) => {
            const current = await tx.rotations.state(key.keyId, { lock: true });
            await tx.rotations.setSettings(key.keyId, { enabled: true, intervalDays: current.intervalDays + 1, nextRotationAt: null });
          });
        await Promise.all(Array.from({ length: rounds * 2 }, (_, i) => increment(i % 2 === 0 ? a : b)));
        expect((await a.rotations.state(key.keyId)).intervalDays).toBe(ROTATION_OFF.intervalDays + rounds * 2);
      });
    });

    describe('change feed', () => {
      test('a committed change reaches every instance, this one included', async () => {
        const a = await fresh();
        const b = await another(a);
        const atA = listen(a);
        const atB = listen(b);
        const key = await createKey(a);
        await atA.drain(key.keyId);
        await atB.drain(key.keyId);
        await a.keys.update({ ...key, description: 'seen everywhere' });
        await atB.until(key.keyId);
        await atA.until(key.keyId);
      });

      test('every write that changes what a cache holds is announced', async () => {
        const a = await fresh();
        const b = await another(a);
        const atB = listen(b);
        const announced = async (what: string, keyId: string, write: () => Promise<unknown>): Promise<void> => {
          atB.clear();
          await write();
          await atB.until(keyId, what);
        };
        const record = newKey();
        await a.keys.insertProvisioning(record, 10);
        await announced('markProvisioned', record.keyId, () => a.keys.markProvisioned(record.keyId));
        await announced('update', record.keyId, () => a.keys.update({ ...record, state: KEY_STATE.disabled }));
        const grant = newGrant(record.keyId);
        await announced('grants.insert', record.keyId, () => a.grants.insert(grant, 10));
        await announced('grants.removeWithDescendants', record.keyId, () => a.grants.removeWithDescendants(grant.grantId));
        const alias = newAlias(record.keyId);
        await announced('aliases.insert', record.keyId, () => a.aliases.insert(alias, 10));
        const target = await createKey(a);
        await atB.drain(target.keyId);
        await announced('aliases.associate (the target)', target.keyId, () => a.aliases.associate(PROJECT, alias.alias, target.keyId, NOW + 1, 10));
        await announced('aliases.associate (the key it left)', record.keyId, () => a.aliases.associate(PROJECT, alias.alias, record.keyId, NOW + 2, 10));
        await announced('aliases.remove', record.keyId, () => a.aliases.remove(PROJECT, record.keyId, [alias.alias]));
        const version = await a.rotations.claim(record.keyId, 'on-demand', NOW, BUDGET);
        await announced('rotations.finish', record.keyId, () => a.rotations.finish(record.keyId, version!, NOW, NOW + 1));
        await announced('keys.remove', record.keyId, () => a.keys.remove(record.keyId));
      });

      test('a change in a transaction is delivered after its commit, not before', async () => {
        const a = await fresh();
        const b = await another(a);
        const atB = listen(b);
        const key = await createKey(a);
        await atB.drain(key.keyId);
        await a.withTransaction(async (tx) => {
          await tx.keys.update({ ...key, state: KEY_STATE.disabled });
          await settle(b);
          expect(atB.changes).toEqual([]);
        });
        await atB.until(key.keyId);
      });

      test('a rolled-back change is never delivered', async () => {
        const a = await fresh();
        const b = await another(a);
        const atB = listen(b);
        const key = await createKey(a);
        const sentinel = await createKey(a);
        await atB.drain(key.keyId, sentinel.keyId);
        await expect(
          a.withTransaction(async (tx) => {
            await tx.keys.update({ ...key, state: KEY_STATE.disabled });
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        await settle(b);
        // Changes arrive in commit order: once a later commit's has, the rolled-back one never will.
        await a.keys.update({ ...sentinel, description: 'later' });
        await atB.until(sentinel.keyId);
        expect(atB.changes.filter((change) => change.kind === 'key' && change.keyId === key.keyId)).toEqual([]);
      });

      test('an unsubscribed listener hears nothing more', async () => {
        const a = await fresh();
        const gone: StoreChange[] = [];
        const unsubscribe = a.changes.subscribe((change) => gone.push(change));
        const still = listen(a);
        const key = await createKey(a);
        await still.drain(key.keyId);
        gone.splice(0);
        unsubscribe();
        await a.keys.update({ ...key, description: 'x' });
        await still.until(key.keyId);
        expect(gone).toEqual([]);
      });
    });

    describe('job leases', () => {
      test('a lease is exclusive per job and item until its holder releases it', async () => {
        const a = await fresh();
        const b = await another(a);
        const lease = await a.leases.tryClaim('delete-material', 'k1', 60_000);
        expect(lease).toMatchObject({ job: 'delete-material', item: 'k1' });
        expect(await b.leases.tryClaim('delete-material', 'k1', 60_000)).toBeUndefined();
        expect(await b.leases.tryClaim('delete-material', 'k2', 60_000)).toBeDefined();
        expect(await b.leases.tryClaim('roll-back-rotation', 'k1', 60_000)).toBeDefined();
        expect(await lease!.renew(60_000)).toBe(true);
        await lease!.release();
        const taken = await b.leases.tryClaim('delete-material', 'k1', 60_000);
        expect(taken).toBeDefined();
        expect(await a.leases.tryClaim('delete-material', 'k1', 60_000)).toBeUndefined();
      });

      test('an expired lease is taken over; its old holder can neither renew nor release it', async () => {
        const a = await fresh();
        const b = await another(a);
        const old = await a.leases.tryClaim('rotate', 'k1', 1);
        expect(old).toBeDefined();
        const taken = await eventually('the expired lease taken over', () => b.leases.tryClaim('rotate', 'k1', 60_000));
        expect(await old!.renew(60_000)).toBe(false);
        await old!.release();
        expect(await a.leases.tryClaim('rotate', 'k1', 60_000)).toBeUndefined();
        expect(await taken!.renew(60_000)).toBe(true);
        await taken!.release();
        expect(await a.leases.tryClaim('rotate', 'k1', 60_000)).toBeDefined();
      });
    });

    describe('bootstrap lock', () => {
      test('holds every other instance back until the work settles, and is released when it throws', async () => {
        const a = await fresh();
        const b = await another(a);
        const order: string[] = [];
        let open!: () => void;
        const gate = new Promise<void>((resolve) => (open = resolve));
        const first = a.bootstrap.exclusive('token', async () => {
          order.push('a starts');
          await gate;
          order.push('a ends');
          return 'a';
        });
        await eventually('the first holder running', () => order.includes('a starts'));
        const second = b.bootstrap.exclusive('token', async () => {
          order.push('b runs');
          return 'b';
        });
        await settle(b);
        expect(order).toEqual(['a starts']);
        open();
        expect(await first).toBe('a');
        expect(await second).toBe('b');
        expect(order).toEqual(['a starts', 'a ends', 'b runs']);

        const failure = new Error('bootstrap failed');
        await expect(a.bootstrap.exclusive('token', async () => Promise.reject(failure))).rejects.toBe(failure);
        expect(await b.bootstrap.exclusive('token', async () => 'after a failure')).toBe('after a failure');
      });
    });

    describe('readiness', () => {
      test('ping answers while the store is open', async () => {
        const store = await fresh();
        await expect(store.ping()).resolves.toBeUndefined();
      });
    });
  });
}

/** Dates near today's, so that nothing depends on the clock; tests pass `now` explicitly. */
const NOW = 1_800_000_000_000;
const PROJECT = 'project-a';
const OTHER_PROJECT = 'project-b';
const BUDGET = 1_000_000;
let serial = 0;

function newKey(overrides: Partial<KeyRecord> = {}): KeyRecord {
  serial++;
  return {
    keyId: randomUUID(),
    projectId: PROJECT,
    alias: `alias-${serial}-${randomBytes(3).toString('hex')}`,
    description: '',
    keySpec: 'AES_256',
    keyUsage: 'ENCRYPT_DECRYPT',
    origin: 'kms',
    state: KEY_STATE.enabled,
    creationDate: NOW,
    scheduledDeletionDate: null,
    materialVersion: 1,
    ...overrides,
  };
}

async function createKey(store: MetadataStore, overrides: Partial<KeyRecord> = {}): Promise<KeyRecord> {
  const record = newKey(overrides);
  await store.keys.insertProvisioning(record, 1000);
  expect(await store.keys.markProvisioned(record.keyId)).toBe(true);
  return record;
}

function newGrant(keyId: string, overrides: Partial<Omit<GrantRecord, 'projectId'>> = {}): Omit<GrantRecord, 'projectId'> {
  serial++;
  return {
    grantId: randomBytes(32).toString('hex'),
    keyId,
    name: `grant-${serial}`,
    granteePrincipal: `user-${serial}`,
    granteeType: 'user',
    retiringPrincipal: `retirer-${serial}`,
    issuingPrincipal: 'admin',
    operations: ['describe-key'],
    creationDate: NOW + serial,
    parentGrantId: null,
    ...overrides,
  };
}

function newAlias(keyId: string, overrides: Partial<AliasRecord> = {}): AliasRecord {
  serial++;
  return { projectId: PROJECT, alias: `alias/a-${serial}-${randomBytes(3).toString('hex')}`, keyId, createTime: NOW + serial, updateTime: NOW + serial, ...overrides };
}

function newCredential(overrides: Partial<Omit<CredentialRecord, 'enabled'>> = {}): Omit<CredentialRecord, 'enabled'> {
  serial++;
  return {
    id: `AK${serial}${randomBytes(6).toString('hex').toUpperCase()}`,
    kind: 'aksk',
    projectId: PROJECT,
    actions: ['kms:*', 'kms:cmk:list'],
    description: `credential ${serial}`,
    sealedSecret: randomBytes(44),
    tokenHash: null,
    createdAt: NOW,
    expiresAt: null,
    ...overrides,
  };
}

function page(overrides: Partial<{ offset: number; limit: number; now: number }> = {}): { offset: number; limit: number; now: number } {
  return { offset: 0, limit: 100, now: NOW, ...overrides };
}

function ids(records: ReadonlyArray<{ keyId: string } | { grantId: string }>): string[] {
  return records.map((record) => ('grantId' in record ? record.grantId : record.keyId));
}

function sortRefs(refs: Array<{ keyId: string; version: number }>): Array<{ keyId: string; version: number }> {
  return [...refs].sort((x, y) => x.keyId.localeCompare(y.keyId) || x.version - y.version);
}

/** A few event-loop turns (and ~200 ms) for a store to deliver what it would, polling where the store must be asked. */
async function settle(store: MetadataStore): Promise<void> {
  for (let turn = 0; turn < 10; turn++) {
    store.changes.poll();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Heard {
  readonly changes: StoreChange[];
  clear(): void;
  /** Waits until a change naming `keyId` (or `all`) has arrived. */
  until(keyId: string, what?: string): Promise<void>;
  /** Waits for the changes of set-up writes to these keys, then forgets what was heard. */
  drain(...keyIds: string[]): Promise<void>;
}

function listen(store: MetadataStore): Heard {
  const changes: StoreChange[] = [];
  store.changes.subscribe((change) => changes.push(change));
  return {
    changes,
    clear: () => changes.splice(0),
    async until(keyId, what = 'a change') {
      await eventually(`${what} of ${keyId} delivered`, () => {
        store.changes.poll();
        return changes.some((change) => change.kind === 'all' || change.keyId === keyId) ? changes : undefined;
      });
    },
    async drain(...keyIds) {
      for (const keyId of keyIds) await this.until(keyId, 'the set-up');
      changes.splice(0);
    },
  };
}
