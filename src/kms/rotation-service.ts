import { KEY_STATE, type KeyRecord } from '../domain/keys';
import type { MetadataStore } from '../domain/repositories';
import { DAY_MS, type RotationSettings, type RotationState } from '../domain/rotation';
import { KmsError } from '../errors';
import type {
  EmptyResponse,
  KeyRotationStatusResponse,
  OperateKeyRequest,
  RotateOnDemandResponse,
  UpdateKeyRotationIntervalRequest,
} from './api-types';
import type { Clock, RequestContext } from './context';
import type { KeyRotator } from './key-rotation';
import { checkRotatable } from './key-purpose';
import type { KeyService } from './key-service';
import type { SealUsage } from './seal-usage';

const MIN_INTERVAL_DAYS = 30;
const MAX_INTERVAL_DAYS = 365;
/** key_materials[].state as the SDK's model spells it: 2 enabled (0 would be waiting for rotation). */
const MATERIAL_ENABLED = 2;

export interface RotationServiceDeps {
  readonly keys: KeyService;
  readonly store: MetadataStore;
  readonly rotator: KeyRotator;
  readonly usage: SealUsage;
  readonly clock: Clock;
}

/**
 * The rotation endpoints: scheduled rotation on or off, its interval, the status, and rotation on
 * demand. Settings may change on a key that is enabled or disabled, not on one pending deletion
 * (KMS.0210); rotating needs an enabled key. The rotation itself is the rotator's (key-rotation.ts).
 */
export class RotationService {
  constructor(private readonly deps: RotationServiceDeps) {}

  /** The first scheduled rotation is due rotation_interval days (365 unless changed) from now. */
  async enableKeyRotation(ctx: RequestContext, request: OperateKeyRequest): Promise<EmptyResponse> {
    const key = await this.configurableKey(ctx, request.key_id);
    await this.updateSettings(key.keyId, (current) => {
      if (current.enabled) throw new KmsError('KMS.2901', { detail: 'Key rotation is already enabled.' });
      return { enabled: true, intervalDays: current.intervalDays, nextRotationAt: this.deps.clock() + current.intervalDays * DAY_MS };
    });
    return {};
  }

  async disableKeyRotation(ctx: RequestContext, request: OperateKeyRequest): Promise<EmptyResponse> {
    const key = await this.configurableKey(ctx, request.key_id);
    await this.updateSettings(key.keyId, (current) => {
      if (!current.enabled) throw new KmsError('KMS.0313');
      return { enabled: false, intervalDays: current.intervalDays, nextRotationAt: null };
    });
    return {};
  }

  /** The next rotation moves with the interval: it is due the new interval after the last one (or after enabling). */
  async updateKeyRotationInterval(ctx: RequestContext, request: UpdateKeyRotationIntervalRequest): Promise<EmptyResponse> {
    const days = request.rotation_interval;
    // The schema limits it already; this is the rule's own statement of it.
    if (!Number.isInteger(days) || days < MIN_INTERVAL_DAYS || days > MAX_INTERVAL_DAYS) {
      throw new KmsError('KMS.3001', { detail: `rotation_interval must be a whole number of days, ${MIN_INTERVAL_DAYS} to ${MAX_INTERVAL_DAYS}.` });
    }
    const key = await this.configurableKey(ctx, request.key_id);
    await this.updateSettings(key.keyId, (current) => {
      if (!current.enabled || current.nextRotationAt === null) throw new KmsError('KMS.0313');
      return { enabled: true, intervalDays: days, nextRotationAt: current.nextRotationAt + (days - current.intervalDays) * DAY_MS };
    });
    return {};
  }

  /**
   * The SDK's ShowKeyRotationStatusResponse (key_rotation_enabled a JSON boolean, the interval and
   * the count of rotations numbers), with the seal counts as extensions: per version, and for the
   * current one with the budget after which the key rotates by itself.
   */
  async getKeyRotationStatus(ctx: RequestContext, request: OperateKeyRequest): Promise<KeyRotationStatusResponse> {
    const key = await this.deps.keys.visibleKey(ctx, request.key_id);
    checkRotatable(key);
    const state: RotationState = await this.deps.store.rotations.state(key.keyId);
    const materials = (await this.deps.store.rotations.materials(key.keyId)).map((material) => ({
      create_time: String(material.createdAt),
      expiration_time: '',
      state: MATERIAL_ENABLED,
      version: material.version,
      seal_count: material.seals + this.deps.usage.unflushed({ keyId: key.keyId, version: material.version }),
    }));
    return {
      key_rotation_enabled: state.enabled,
      rotation_interval: state.intervalDays,
      last_rotation_time: state.lastRotationAt === null ? '' : String(state.lastRotationAt),
      number_of_rotations: key.materialVersion,
      key_materials: materials,
      seal_count: materials.find((material) => material.version === key.materialVersion)?.seal_count ?? 0,
      seal_budget: this.deps.rotator.sealBudget,
    };
  }

  /** A new material version now; with scheduled rotation on, the next one is due an interval later. */
  async rotateOnDemand(ctx: RequestContext, request: OperateKeyRequest): Promise<RotateOnDemandResponse> {
    const key = await this.deps.keys.usableKey(ctx, request.key_id);
    checkRotatable(key);
    const version = await this.deps.rotator.rotate(key.keyId, key.projectId, 'on-demand');
    // Another request or process is rotating this key at this moment: nothing is wrong, try again.
    if (version === undefined) throw new KmsError('KMS.0104', { detail: 'A rotation of this key is under way; retry later.' });
    return { key_id: key.keyId };
  }

  private async configurableKey(ctx: RequestContext, keyId: string): Promise<KeyRecord> {
    const key = await this.deps.keys.visibleKey(ctx, keyId);
    if (key.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
    checkRotatable(key);
    return key;
  }

  /**
   * Reads a key's settings and writes `decide`'s in one transaction, the read locking them, so
   * that two requests (or processes, or instances) never both act on the same old state.
   * `decide` throws to refuse.
   */
  private async updateSettings(keyId: string, decide: (current: RotationState) => RotationSettings): Promise<void> {
    await this.deps.store.withTransaction(async (tx) => {
      const current = await tx.rotations.state(keyId, { lock: true });
      await tx.rotations.setSettings(keyId, decide(current));
    });
  }
}
