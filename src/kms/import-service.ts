import type { Logger } from 'pino';
import { noImport, type ImportRecord } from '../domain/imports';
import { KEY_STATE, type KeyRecord } from '../domain/keys';
import type { MetadataStore } from '../domain/repositories';
import { KmsError } from '../errors';
import type { Hsm, KeyImport, MaterialRef, WrappingAlgorithm } from '../hsm/hsm';
import { WRAPPED_BYTES } from '../hsm/roles/key-import';
import type { EmptyResponse, GetParametersForImportRequest, GetParametersForImportResponse, ImportKeyMaterialRequest, OperateKeyRequest } from './api-types';
import type { Clock, RequestContext } from './context';
import { openImportToken, sealImportToken, wrappingKeyHash } from './import-token';
import { JOBS, underLease } from './job-lease';
import { keyKindOf } from './key-specs';
import type { KeyService } from './key-service';
import { strictBase64 } from './strict-base64';

/** An import token (and its wrapping key pair) lasts 24 hours, as Huawei KMS has it. */
const TOKEN_LIFETIME_S = 86_400;

export interface ImportServiceDeps {
  readonly keys: KeyService;
  readonly store: MetadataStore;
  readonly hsm: Hsm;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Bring your own key (origin external): get-parameters-for-import, import-key-material and
 * delete-imported-key-material. The material is unwrapped in the HSM (the keyImport role) straight
 * into the key's non-extractable AES-256 object, so every symmetric operation uses it unchanged;
 * a key pair's private key (encrypted_privatekey, under a temporary AES key that
 * encrypted_key_material carries) into its private key object, beside a public key object made
 * from it, so that the asymmetric roles use them as they use generated ones.
 *
 * Each step that changes a key's import (a new wrapping key, an import, a deletion, an expiry) runs
 * under the key's import lease (job-lease.ts), so that two requests, processes or instances never
 * interleave their HSM writes for one key; a second at the same moment gets 503 (KMS.0104) and
 * may retry. The store is written before the HSM where a crash between them must leave nothing
 * usable (a deletion: the key is pending import first, its material destroyed after; what is left
 * in the token is replaced by the next import), and after it where it must leave nothing claimed
 * that is not there (an import: the key is enabled only once its material is in the token).
 *
 * The audit record names the key and, for get-parameters-for-import, the wrapping algorithm
 * (ctx.actedOn); never the token, nor the wrapped material.
 */
export class ImportService {
  constructor(private readonly deps: ImportServiceDeps) {}

  async getParametersForImport(ctx: RequestContext, request: GetParametersForImportRequest): Promise<GetParametersForImportResponse> {
    const role = this.role();
    const record = await this.pendingImport(ctx, request.key_id);
    ctx.actedOn.algorithm = request.wrapping_algorithm;
    const algorithm = wrappingAlgorithm(role, request.wrapping_algorithm);
    const { store, hsm, clock } = this.deps;
    const expiresAt = Math.floor(clock() / 1000) + TOKEN_LIFETIME_S;
    return this.exclusive(record, async () => {
      const current = (await store.imports.get(record.keyId)) ?? noImport(record.keyId);
      // Recorded first: a crash after the wrapping key is made leaves an expiry the sweep destroys it at.
      await store.imports.put({ ...current, wrappingExpiresAt: expiresAt * 1000 });
      const publicKey = await role.createWrappingKey(record.keyId);
      const token = await sealImportToken(hsm, { keyId: record.keyId, wrappingKeyHash: wrappingKeyHash(publicKey), algorithm, expiresAt });
      return { key_id: record.keyId, import_token: token, expiration_time: expiresAt, public_key: publicKey.toString('base64') };
    });
  }

  async importKeyMaterial(ctx: RequestContext, request: ImportKeyMaterialRequest): Promise<EmptyResponse> {
    const role = this.role();
    const record = await this.pendingImport(ctx, request.key_id);
    const { spec, usage } = keyKindOf(record.keySpec, record.keyUsage);
    const pair = spec !== 'AES_256';
    if (pair && request.encrypted_privatekey === undefined) throw new KmsError('KMS.2608');
    if (!pair && request.encrypted_privatekey !== undefined) {
      throw new KmsError('KMS.0308', { detail: 'encrypted_privatekey: only a key pair\'s private key is imported with it; an AES_256 key\'s material is encrypted_key_material itself.' });
    }
    const { store, hsm, clock, logger } = this.deps;
    const now = clock();
    const materialExpiresAt = request.expiration_time === undefined ? null : request.expiration_time * 1000;
    if (materialExpiresAt !== null && materialExpiresAt <= now) throw new KmsError('KMS.2602');
    const token = await openImportToken(hsm, request.import_token);
    if (token.keyId !== record.keyId) throw new KmsError('KMS.2603');
    if (token.expiresAt * 1000 <= now) throw new KmsError('KMS.2601');
    const wrapped = strictBase64(request.encrypted_key_material);
    if (wrapped === undefined || wrapped.length !== WRAPPED_BYTES) {
      const what = pair ? 'the temporary AES key' : 'the material';
      throw new KmsError('KMS.0308', { detail: `encrypted_key_material must be base64 of ${WRAPPED_BYTES} bytes: ${what} wrapped under the RSA-2048 wrapping public key.` });
    }
    const wrappedPrivateKey = request.encrypted_privatekey === undefined ? undefined : strictBase64(request.encrypted_privatekey);
    // RFC 5649's output is a multiple of 8 bytes, at least 16.
    if (pair && (wrappedPrivateKey === undefined || wrappedPrivateKey.length < 16 || wrappedPrivateKey.length % 8 !== 0)) {
      throw new KmsError('KMS.2609', { detail: 'encrypted_privatekey must be base64 of the DER PKCS#8 private key wrapped under the temporary key with AES key wrap with padding (RFC 5649).' });
    }
    await this.exclusive(record, async () => {
      const current = (await store.imports.get(record.keyId)) ?? noImport(record.keyId);
      const latest = await store.keys.get(record.projectId, record.keyId);
      if (latest?.state !== KEY_STATE.pendingImport) throw new KmsError('KMS.0310');
      // The token's wrapping key must still be the key's: a later request replaced it, an import destroyed it.
      const publicKey = await role.wrappingPublicKey(record.keyId).catch(asTokenRefusal);
      if (!wrappingKeyHash(publicKey).equals(token.wrappingKeyHash)) throw new KmsError('KMS.2605');
      const ref = materialOf(record);
      const expected = current.fingerprint ?? undefined;
      const fingerprint = await (wrappedPrivateKey
        ? role.unwrapPrivateKey({ ref, spec, usage, keyId: record.keyId, algorithm: token.algorithm, wrappedKey: wrapped, wrappedPrivateKey, expectedFingerprint: expected })
        : role.unwrapKey(ref, spec, record.keyId, token.algorithm, wrapped, expected)
      ).catch(asTokenRefusal);
      const imported = await store.withTransaction(async (tx) => {
        const key = await tx.keys.get(record.projectId, record.keyId, { lock: true });
        if (key?.state !== KEY_STATE.pendingImport) return false;
        await tx.keys.update({ ...key, state: KEY_STATE.enabled });
        await tx.imports.put({ ...current, fingerprint, imported: true, materialExpiresAt });
        return true;
      });
      if (!imported) {
        // Scheduled for deletion meanwhile: the material must not outlive that.
        await hsm.destroyKey(ref);
        throw new KmsError('KMS.0310');
      }
      // The wrapping key has served; the sweep destroys it at its expiry if this fails.
      try {
        await role.destroyWrappingKey(record.keyId);
        await store.imports.put({ ...current, fingerprint, imported: true, materialExpiresAt, wrappingExpiresAt: null });
      } catch (error) {
        logger.warn({ requestId: ctx.requestId, keyId: record.keyId, err: error }, 'could not destroy a used wrapping key: the sweep destroys it when it expires');
      }
    });
    logger.info({ requestId: ctx.requestId, projectId: ctx.projectId, keyId: record.keyId, expires: materialExpiresAt }, 'key material imported');
    return {};
  }

  async deleteImportedKeyMaterial(ctx: RequestContext, request: OperateKeyRequest): Promise<EmptyResponse> {
    const record = await this.deps.keys.visibleKey(ctx, request.key_id);
    if (record.origin !== 'external') throw new KmsError('KMS.0309');
    if (record.state !== KEY_STATE.enabled && record.state !== KEY_STATE.disabled) throw new KmsError('KMS.2701');
    await this.exclusive(record, async () => {
      if (!(await releaseMaterial(this.deps.store, this.deps.hsm, record, () => true))) throw new KmsError('KMS.2701');
    });
    this.deps.logger.info({ requestId: ctx.requestId, projectId: ctx.projectId, keyId: record.keyId }, 'imported key material deleted');
    return {};
  }

  private role(): KeyImport {
    const role = this.deps.hsm.keyImport;
    if (!role) throw new KmsError('KMS.0308', { detail: 'This HSM cannot import key material (no RSA-OAEP unwrapping with a hash the API names).' });
    return role;
  }

  /** The key, when it is an external key pending import: KMS.0309 for a key made in the HSM, KMS.0310 for one in another state. */
  private async pendingImport(ctx: RequestContext, keyId: string): Promise<KeyRecord> {
    const record = await this.deps.keys.visibleKey(ctx, keyId);
    if (record.origin !== 'external') throw new KmsError('KMS.0309');
    if (record.state !== KEY_STATE.pendingImport) throw new KmsError('KMS.0310');
    return record;
  }

  /** `work` under the key's import lease; KMS.0104 (retry) when another request, process or instance holds it. */
  private async exclusive<T>(record: KeyRecord, work: () => Promise<T>): Promise<T> {
    const outcome = await underLease(this.deps.store.leases, JOBS.keyImport, record.keyId, work, { logger: this.deps.logger });
    if (!outcome.claimed) throw new KmsError('KMS.0104', { cause: new Error(`another import step of key ${record.keyId} is under way`) });
    return outcome.value;
  }
}

/** The material version an imported key's material is: its first and only (imported keys are not rotated). */
function materialOf(record: KeyRecord): MaterialRef {
  return { keyId: record.keyId, version: record.materialVersion };
}

/** The role's "no wrapping key" (never made, replaced, used or expired) is the token's fault: obtain a new one. */
function asTokenRefusal(error: unknown): never {
  if (error instanceof KmsError && error.code === 'KMS.0207') throw new KmsError('KMS.2605');
  throw error;
}

function wrappingAlgorithm(role: KeyImport, requested: string): WrappingAlgorithm {
  if (requested === 'SM2_ENCRYPT') {
    throw new KmsError('KMS.0308', { detail: 'wrapping_algorithm: SM2_ENCRYPT needs vendor (SM2) mechanisms that this service\'s HSM does not have.' });
  }
  const offered = [...role.wrappingAlgorithms];
  const algorithm = offered.find((name) => name === requested);
  if (!algorithm) throw new KmsError('KMS.0308', { detail: `wrapping_algorithm: this HSM can import with ${offered.join(' or ')}.` });
  return algorithm;
}

/**
 * Makes an imported key pending import again and destroys its material: the record first (the key
 * is unusable from then on), the HSM object after (what a crash leaves in the token is replaced by
 * the next import). Only when `due(import record)` still holds under the transaction's lock, and
 * the key is enabled or disabled with material imported; false otherwise. The fingerprint is kept:
 * only the same material may come back. Run under the key's import lease.
 */
export async function releaseMaterial(store: MetadataStore, hsm: Hsm, record: KeyRecord, due: (current: ImportRecord) => boolean): Promise<boolean> {
  const released = await store.withTransaction(async (tx) => {
    const key = await tx.keys.get(record.projectId, record.keyId, { lock: true });
    if (!key || (key.state !== KEY_STATE.enabled && key.state !== KEY_STATE.disabled)) return false;
    const current = (await tx.imports.get(record.keyId, { lock: true })) ?? noImport(record.keyId);
    if (!current.imported || !due(current)) return false;
    await tx.keys.update({ ...key, state: KEY_STATE.pendingImport });
    await tx.imports.put({ ...current, imported: false, materialExpiresAt: null });
    return true;
  });
  if (released) await hsm.destroyKey(materialOf(record));
  return released;
}
