/**
 * The KMS as an AWS Encryption SDK keyring. Encryption asks the KMS for a data key of the suite's
 * length (create-datakey), with the message's encryption context bound into the data key's
 * ciphertext through the API's `encryption_context`; decryption sends that ciphertext back
 * (decrypt-datakey) with the context read from the message, so a changed context is refused by the
 * KMS itself (KMS.2201), not only by the message's own authentication.
 *
 * An encrypted data key written here says which service, project and key sealed it: the provider id
 * is the service's name (`hsm-kms` unless configured), the provider info `project_id/key_id`.
 * Where to send it is never read from the message: only the configured endpoints are called.
 */
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import {
  EncryptedDataKey,
  KeyringNode,
  KeyringTraceFlag,
  type NodeDecryptionMaterial,
  type NodeEncryptionMaterial,
} from '@aws-crypto/material-management-node';
import { withFailover, withHedging, type EndpointPolicy } from './endpoints';
import { ConfigurationError, KmsResponseError, NoMatchingDataKeyError } from './errors';
import { KmsHttp, type KmsAuth } from './kms-http';

export interface KmsKeyringOptions {
  /** Base URLs of the service's instances, in order of preference, e.g. ['https://kms-a:8443', 'https://kms-b:8443']. */
  readonly endpoints: readonly string[];
  readonly projectId: string;
  /** The CMK's id (36 characters). */
  readonly keyId: string;
  readonly auth: KmsAuth;
  /** The provider id written into messages; name the service, not a host (default `hsm-kms`). */
  readonly providerId?: string;
  /** Per-call timeout in ms (default 5000). */
  readonly timeoutMs?: number;
  /** A decryption is also sent to the next endpoint after this many ms without an answer (default 250). */
  readonly hedgeDelayMs?: number;
}

export const DEFAULT_PROVIDER_ID = 'hsm-kms';
const KEY_ID = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;

export class KmsKeyringNode extends KeyringNode {
  readonly providerId: string;
  readonly providerInfo: string;
  readonly keyId: string;
  readonly http: KmsHttp;
  private readonly policy: EndpointPolicy;

  /** The options are not kept: their `auth` lives only inside `http`, in private fields. */
  constructor(options: KmsKeyringOptions) {
    super();
    if (options.endpoints.length === 0) throw new ConfigurationError('at least one endpoint is needed');
    const endpoints = options.endpoints.map((endpoint) => {
      let url: URL;
      try {
        url = new URL(endpoint);
      } catch {
        throw new ConfigurationError(`not an endpoint URL: ${endpoint}`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigurationError(`not an http(s) endpoint: ${endpoint}`);
      return endpoint.replace(/\/+$/, '');
    });
    if (!KEY_ID.test(options.keyId)) throw new ConfigurationError('keyId must be a 36-character key id');
    this.keyId = options.keyId;
    this.providerId = options.providerId ?? DEFAULT_PROVIDER_ID;
    if (!this.providerId || this.providerId.startsWith('aws-kms')) throw new ConfigurationError('providerId must be non-empty and not aws-kms');
    this.providerInfo = `${options.projectId}/${options.keyId}`;
    this.http = new KmsHttp(options.projectId, options.auth);
    this.policy = {
      endpoints,
      timeoutMs: positive(options.timeoutMs ?? 5000, 'timeoutMs'),
      hedgeDelayMs: positive(options.hedgeDelayMs ?? 250, 'hedgeDelayMs'),
    };
  }

  /** What may be shown of it (util.inspect, JSON): no credential. */
  toJSON(): Record<string, unknown> {
    return { providerId: this.providerId, providerInfo: this.providerInfo, endpoints: this.policy.endpoints, http: this.http.toJSON() };
  }

  [inspect.custom](): string {
    return `KmsKeyringNode ${inspect(this.toJSON())}`;
  }

  /** Names this keyring in the data-key cache: its entries are never handed to another keyring. */
  get partition(): string {
    return `${this.providerId}\u0000${this.providerInfo}\u0000${this.policy.endpoints.join(',')}`;
  }

  async _onEncrypt(material: NodeEncryptionMaterial): Promise<NodeEncryptionMaterial> {
    const keyBytes = material.suite.keyLengthBytes;
    const context = contextField(material.encryptionContext);
    const trace = { keyNamespace: this.providerId, keyName: this.providerInfo };
    if (!material.hasUnencryptedDataKey) {
      const operation = 'create-datakey';
      const answer = await withFailover(this.http, this.policy, operation, {
        key_id: this.keyId,
        datakey_length: String(keyBytes * 8),
        ...context,
      });
      const dataKey = hexField(answer.body, 'plain_text', keyBytes, operation, answer.endpoint, answer.requestId);
      const sealed = hexField(answer.body, 'cipher_text', undefined, operation, answer.endpoint, answer.requestId);
      material.setUnencryptedDataKey(dataKey, {
        ...trace,
        flags: KeyringTraceFlag.WRAPPING_KEY_GENERATED_DATA_KEY,
      });
      return material.addEncryptedDataKey(this.edk(sealed), KeyringTraceFlag.WRAPPING_KEY_ENCRYPTED_DATA_KEY);
    }
    // Another keyring made the data key (a multi-keyring): seal a copy of it under our CMK.
    const unencrypted = material.getUnencryptedDataKey();
    if (!(unencrypted instanceof Uint8Array)) throw new ConfigurationError('the data key is a KeyObject; this keyring needs its bytes');
    const dataKey = Buffer.from(unencrypted);
    const operation = 'encrypt-datakey';
    try {
      const answer = await withFailover(this.http, this.policy, operation, {
        key_id: this.keyId,
        plain_text: Buffer.concat([dataKey, createHash('sha256').update(dataKey).digest()]).toString('hex'),
        datakey_plain_length: String(keyBytes),
        ...context,
      });
      const sealed = hexField(answer.body, 'cipher_text', undefined, operation, answer.endpoint, answer.requestId);
      return material.addEncryptedDataKey(this.edk(sealed), KeyringTraceFlag.WRAPPING_KEY_ENCRYPTED_DATA_KEY);
    } finally {
      dataKey.fill(0);
    }
  }

  async _onDecrypt(material: NodeDecryptionMaterial, encryptedDataKeys: EncryptedDataKey[]): Promise<NodeDecryptionMaterial> {
    if (material.hasUnencryptedDataKey) return material;
    const ours = encryptedDataKeys.filter((edk) => edk.providerId === this.providerId && edk.providerInfo === this.providerInfo);
    if (ours.length === 0) {
      throw new NoMatchingDataKeyError(`the message has no data key of ${this.providerId} ${this.providerInfo}`);
    }
    const keyBytes = material.suite.keyLengthBytes;
    const operation = 'decrypt-datakey';
    let lastError: unknown;
    for (const edk of ours) {
      try {
        const answer = await withHedging(this.http, this.policy, operation, {
          key_id: this.keyId,
          cipher_text: Buffer.from(edk.encryptedDataKey).toString('hex'),
          datakey_cipher_length: String(keyBytes),
          ...contextField(material.encryptionContext),
        });
        const dataKey = hexField(answer.body, 'data_key', keyBytes, operation, answer.endpoint, answer.requestId);
        const digest = typeof answer.body.datakey_dgst === 'string' ? answer.body.datakey_dgst.toLowerCase() : undefined;
        if (digest !== undefined && digest !== createHash('sha256').update(dataKey).digest('hex')) {
          dataKey.fill(0);
          throw new KmsResponseError(operation, answer.endpoint, 'the data key does not match its digest', answer.requestId);
        }
        return material.setUnencryptedDataKey(dataKey, {
          keyNamespace: this.providerId,
          keyName: this.providerInfo,
          flags: KeyringTraceFlag.WRAPPING_KEY_DECRYPTED_DATA_KEY,
        });
      } catch (error) {
        // A refusal or an outage is final for this copy of the data key; another copy may still open.
        lastError = error;
      }
    }
    throw lastError;
  }

  private edk(sealed: Buffer): EncryptedDataKey {
    return new EncryptedDataKey({ providerId: this.providerId, providerInfo: this.providerInfo, encryptedDataKey: sealed });
  }
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new ConfigurationError(`${name} must be a positive number`);
  return value;
}

/** The API's `encryption_context` field, left out when the context is empty. */
function contextField(context: Readonly<Record<string, string>>): { encryption_context?: Record<string, string> } {
  return Object.keys(context).length === 0 ? {} : { encryption_context: { ...context } };
}

function hexField(
  body: Record<string, unknown>,
  name: string,
  bytes: number | undefined,
  operation: string,
  endpoint: string,
  requestId: string | undefined,
): Buffer {
  const value = body[name];
  const ok = typeof value === 'string' && value.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(value) && (bytes === undefined || value.length === bytes * 2);
  if (!ok) throw new KmsResponseError(operation, endpoint, `${name} is not ${bytes === undefined ? 'hex' : `${bytes} bytes of hex`}`, requestId);
  // A Buffer this small comes from Node's shared pool; the library wants (and zeroes) a buffer of its own.
  const pooled = Buffer.from(value, 'hex');
  const isolated = Buffer.alloc(pooled.length);
  pooled.copy(isolated);
  pooled.fill(0);
  return isolated;
}
