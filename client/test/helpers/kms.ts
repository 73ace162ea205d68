/**
 * A real service for the client's tests: the same SoftHSM-backed service the API tests start
 * (test/helpers/service.ts), with a CMK and an AK/SK credential made for the run.
 */
import { startTestService, type TestService } from '../../../test/helpers/service';
import type { KmsKeyringOptions } from '../../src';

export interface ClientTestService {
  readonly service: TestService;
  readonly keyId: string;
  readonly projectId: string;
  readonly ak: string;
  readonly sk: string;
  /** Keyring options for this service: AK/SK-signed, the given endpoints (this service by default). */
  kms(overrides?: Partial<KmsKeyringOptions>): KmsKeyringOptions;
  stop(): Promise<void>;
}

export async function startClientTestService(projectId = 'project-a'): Promise<ClientTestService> {
  const service = await startTestService();
  const created = await service.client(projectId).call('create-key', { key_alias: `envelope-${Date.now()}` });
  if (created.status !== 200) throw new Error(`create-key answered ${created.status}`);
  const keyId: string = created.body.key_info.key_id;
  const issued = await service.service.credentials.createAccessKey({ projectId, actions: ['kms:*'] });
  const handle: ClientTestService = {
    service,
    keyId,
    projectId,
    ak: issued.access_key,
    sk: issued.secret_key,
    kms: (overrides = {}) => ({
      endpoints: [service.service.url],
      projectId,
      keyId,
      auth: { accessKey: issued.access_key, secretKey: issued.secret_key },
      ...overrides,
    }),
    stop: () => service.stop(),
  };
  return handle;
}
