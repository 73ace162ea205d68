import type { QuotaService } from '../../kms/quota-service';
import { getOperation, type Operation } from '../operation';

/** The project's quotas and key count (GETs without a body). */
export function quotaOperations(quotas: QuotaService): Operation[] {
  return [
    getOperation('/v1.0/{project_id}/kms/user-quotas', 'kms:cmk:getQuota', (ctx) => quotas.userQuotas(ctx)),
    getOperation('/v1.0/{project_id}/kms/user-instances', 'kms:cmk:getInstance', (ctx) => quotas.userInstances(ctx)),
  ];
}
