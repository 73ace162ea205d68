import type { KeyState } from '../../src/domain/keys';
import type { MetadataStore } from '../../src/domain/repositories';
import { openStore } from '../../src/store/open-store';
import { expectKmsError, kmsClient, type KmsClient, type KmsResponse } from '../helpers/client';
import { eventually } from '../helpers/eventually';
import { useTestService } from '../helpers/service';

/**
 * What another process or instance changes in the store (here a second store on the service's
 * database, as the command-line tool or another worker opens it) reaches the data-key path, whose
 * key state comes from this process's key cache (src/kms/key-cache.ts): a key disabled or
 * scheduled for deletion elsewhere, and a grant revoked elsewhere, stop working here.
 */

let other: MetadataStore;
let aliases = 0;

// Declared before useTestService, so that it runs before the service stops and its data directory goes.
afterAll(async () => {
  await other?.close();
});

const t = useTestService();
const kms = t.client('project-a');

beforeAll(async () => {
  other = await openStore(t.config);
});

async function usedKey(): Promise<string> {
  const created = await kms.call('create-key', { key_alias: `elsewhere-${++aliases}` });
  expect(created.status).toBe(200);
  const keyId = created.body.key_info.key_id as string;
  // Read once here: its record is in the cache now.
  expect((await kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
  return keyId;
}

/** A state transition as the other process's KeyService makes it. */
async function transitionElsewhere(keyId: string, state: KeyState, scheduledDeletionDate: number | null): Promise<void> {
  await other.withTransaction(async (tx) => {
    const current = (await tx.keys.get('project-a', keyId, { lock: true }))!;
    await tx.keys.update({ ...current, state, scheduledDeletionDate });
  });
}

/** create-datakey with `client` until it is refused with `code`. */
function refusedWith(client: KmsClient, keyId: string, code: string): Promise<KmsResponse> {
  return eventually(`create-datakey refused with ${code}`, () => client.call('create-datakey', { key_id: keyId }), {
    until: (response) => response.body?.error_code === code,
  });
}

it('a key disabled by another process is refused here', async () => {
  const keyId = await usedKey();
  await transitionElsewhere(keyId, '3', null);
  expectKmsError(await refusedWith(kms, keyId, 'KMS.0209'), 400, 'KMS.0209');
  expectKmsError(await kms.call('encrypt-data', { key_id: keyId, plain_text: 'x' }), 400, 'KMS.0209');
});

it('a key scheduled for deletion by another process is refused here', async () => {
  const keyId = await usedKey();
  await transitionElsewhere(keyId, '4', t.clock.now + 7 * 86_400_000);
  expectKmsError(await refusedWith(kms, keyId, 'KMS.0210'), 400, 'KMS.0210');
});

it('a grant revoked by another process no longer allows anything here', async () => {
  const keyId = await usedKey();
  const grantee = await t.service.credentials.createToken({ projectId: 'project-b', actions: ['kms:cmk:list'] });
  const granted = await kms.call('create-grant', { key_id: keyId, grantee_principal: grantee.principal_id, operations: ['create-datakey'] });
  expect(granted.status).toBe(200);
  const viaGrant = kmsClient(() => t.service.url, 'project-a', { 'x-auth-token': grantee.token });
  expect((await viaGrant.call('create-datakey', { key_id: keyId })).status).toBe(200);
  expect(await other.grants.removeWithDescendants(granted.body.grant_id as string)).toMatchObject({ removed: true });
  expectKmsError(await refusedWith(viaGrant, keyId, 'KMS.0307'), 403, 'KMS.0307');
});
