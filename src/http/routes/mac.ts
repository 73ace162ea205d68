import type { MacService } from '../../kms/mac-service';
import { operation, type Operation } from '../operation';

/**
 * MACs with HMAC keys. Huawei's permissions page names no IAM action for them: these follow its
 * kms:cmk:<verb> pattern, as sign and verify have them.
 */
export function macOperations(macs: MacService): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/generate-mac', 'kms:cmk:generateMac', (ctx, body) => macs.generateMac(ctx, body)),
    operation('/v1.0/{project_id}/kms/verify-mac', 'kms:cmk:verifyMac', (ctx, body) => macs.verifyMac(ctx, body)),
  ];
}
