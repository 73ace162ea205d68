import type { GrantRepository, KeyRepository } from '../domain/repositories';
import type { ShowUserInstancesResponse, ShowUserQuotasResponse } from './api-types';
import type { Clock, RequestContext } from './context';

export interface QuotaServiceDeps {
  readonly keys: KeyRepository;
  readonly grants: GrantRepository;
  readonly clock: Clock;
  /** KMS_MAX_KEYS_PER_PROJECT */
  readonly maxKeysPerProject: number;
  /** KMS_MAX_GRANTS_PER_KEY */
  readonly maxGrantsPerKey: number;
}

/**
 * The project's quotas as the API reports them, counted now against the configured limits: the
 * same counts create-key (KMS.1105) and create-grant (KMS.2404) are refused by. Every key here is
 * a customer's own (there are no default keys), so all count.
 */
export class QuotaService {
  constructor(private readonly deps: QuotaServiceDeps) {}

  async userQuotas(ctx: RequestContext): Promise<ShowUserQuotasResponse> {
    const now = this.deps.clock();
    return {
      quotas: {
        resources: [
          { type: 'CMK', used: await this.deps.keys.countKeys(ctx.projectId, now), quota: this.deps.maxKeysPerProject },
          // A quota per key: "used" is how close the project's fullest key is to it.
          { type: 'grant_per_CMK', used: await this.deps.grants.mostOnAKey(ctx.projectId, now), quota: this.deps.maxGrantsPerKey },
        ],
      },
    };
  }

  async userInstances(ctx: RequestContext): Promise<ShowUserInstancesResponse> {
    return { instance_num: await this.deps.keys.countKeys(ctx.projectId, this.deps.clock()) };
  }
}
