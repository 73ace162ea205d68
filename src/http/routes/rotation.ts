import type { RotationService } from '../../kms/rotation-service';
import { operation, type Operation } from '../operation';

/**
 * Rotation with the API's IAM actions. The API names none for rotate-on-demand: it changes the
 * key's rotation as update-key-rotation-interval does, so it asks for kms:cmk:updateRotation.
 */
export function rotationOperations(rotation: RotationService): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/enable-key-rotation', 'kms:cmk:enableRotation', (ctx, body) => rotation.enableKeyRotation(ctx, body)),
    operation('/v1.0/{project_id}/kms/disable-key-rotation', 'kms:cmk:disableRotation', (ctx, body) => rotation.disableKeyRotation(ctx, body)),
    operation('/v1.0/{project_id}/kms/update-key-rotation-interval', 'kms:cmk:updateRotation', (ctx, body) => rotation.updateKeyRotationInterval(ctx, body)),
    operation('/v1.0/{project_id}/kms/get-key-rotation-status', 'kms:cmk:getRotation', (ctx, body) => rotation.getKeyRotationStatus(ctx, body)),
    operation('/v1.0/{project_id}/kms/rotate-on-demand', 'kms:cmk:updateRotation', (ctx, body) => rotation.rotateOnDemand(ctx, body)),
  ];
}
