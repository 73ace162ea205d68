import { hash, randomBytes, randomInt } from 'node:crypto';
import { KmsError } from '../errors';
import type { Hsm } from '../hsm/hsm';
import { CREDENTIAL_SEALING_KEY } from '../hsm/system-keys';
import type { Clock } from '../kms/context';
import type { CredentialKind, CredentialRecord } from '../domain/credentials';
import type { MetadataStore } from '../domain/repositories';
import { CredentialCache } from './credential-cache';
import { actionPatternProblem } from './permissions';
import { credentialIdOf, principalIdOf } from './principal-id';

/**
 * Credentials: AK/SK pairs for clients that sign (the official SDKs) and tokens for clients that
 * do not. A secret key must be usable for HMAC verification, so it is kept sealed under a key in
 * the HSM rather than hashed; a token only has to be recognised, so only its hash is kept.
 */

export interface IssuedAccessKey {
  readonly access_key: string;
  readonly secret_key: string;
  readonly project_id: string;
  readonly actions: readonly string[];
}

export interface IssuedToken {
  readonly token: string;
  readonly token_id: string;
  /** What grants name it by (principal-id.ts). */
  readonly principal_id: string;
  readonly project_id: string;
  readonly actions: readonly string[];
  readonly expires_at: string | null;
}

/** What `credential list` shows: never a secret, sealed or not. */
export interface CredentialInfo {
  readonly id: string;
  /** What grants name it by (principal-id.ts). */
  readonly principal_id: string;
  readonly kind: CredentialKind;
  readonly project_id: string;
  readonly actions: readonly string[];
  readonly description: string;
  readonly enabled: boolean;
  readonly created_at: string;
  readonly expires_at: string | null;
}

export interface CredentialOptions {
  readonly projectId: string;
  readonly actions: readonly string[];
  readonly description?: string;
}

const SEAL_FORMAT = 1;
const IV_BYTES = 12;
const UPPER_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const ALPHANUMERIC = `${UPPER_DIGITS}abcdefghijklmnopqrstuvwxyz`;
const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;
const SECRET_CACHE_LIMIT = 10_000;

function randomString(alphabet: string, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

export function hashToken(token: string): string {
  return hash('sha256', token, 'hex');
}

function sealingAad(id: string, projectId: string): Buffer {
  return Buffer.from(`credential-secret/v${SEAL_FORMAT}\0${id}\0${projectId}`, 'utf8');
}

function info(record: CredentialRecord): CredentialInfo {
  return {
    id: record.id,
    principal_id: principalIdOf(record.id),
    kind: record.kind,
    project_id: record.projectId,
    actions: record.actions,
    description: record.description,
    enabled: record.enabled,
    created_at: new Date(record.createdAt).toISOString(),
    expires_at: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
  };
}

export class CredentialService {
  /** Unsealed secret keys by access key, valid while the sealed value they came from is unchanged. */
  private readonly secrets = new Map<string, { sealed: Buffer; secret: Buffer }>();
  /** Credentials by id and token hash: every request reads one. */
  private readonly cache: CredentialCache;

  constructor(
    private readonly store: Pick<MetadataStore, 'credentials' | 'changes'>,
    private readonly hsm: Hsm,
    private readonly clock: Clock,
  ) {
    this.cache = new CredentialCache(store);
  }

  async createAccessKey(options: CredentialOptions): Promise<IssuedAccessKey> {
    checkOptions(options);
    const accessKey = randomString(UPPER_DIGITS, 20);
    const secretKey = randomString(ALPHANUMERIC, 40);
    const sealed = await this.hsm.symmetric.encrypt(CREDENTIAL_SEALING_KEY, Buffer.from(secretKey, 'utf8'), sealingAad(accessKey, options.projectId));
    await this.store.credentials.insert({
      id: accessKey,
      kind: 'aksk',
      projectId: options.projectId,
      actions: options.actions,
      description: options.description ?? '',
      sealedSecret: Buffer.concat([Buffer.from([SEAL_FORMAT]), sealed.iv, sealed.ciphertext]),
      tokenHash: null,
      createdAt: this.clock(),
      expiresAt: null,
    });
    return { access_key: accessKey, secret_key: secretKey, project_id: options.projectId, actions: options.actions };
  }

  async createToken(options: CredentialOptions & { ttlMs?: number }): Promise<IssuedToken> {
    checkOptions(options);
    const token = `kmst-${randomBytes(32).toString('base64url')}`;
    const tokenId = `tok-${randomBytes(8).toString('hex')}`;
    const expiresAt = options.ttlMs === undefined ? null : this.clock() + options.ttlMs;
    await this.store.credentials.insert({
      id: tokenId,
      kind: 'token',
      projectId: options.projectId,
      actions: options.actions,
      description: options.description ?? '',
      sealedSecret: null,
      tokenHash: hashToken(token),
      createdAt: this.clock(),
      expiresAt,
    });
    return {
      token,
      token_id: tokenId,
      principal_id: principalIdOf(tokenId),
      project_id: options.projectId,
      actions: options.actions,
      expires_at: expiresAt === null ? null : new Date(expiresAt).toISOString(),
    };
  }

  async list(projectId?: string): Promise<CredentialInfo[]> {
    return (await this.store.credentials.list(projectId)).map(info);
  }

  setEnabled(id: string, enabled: boolean): Promise<boolean> {
    return this.store.credentials.setEnabled(id, enabled);
  }

  remove(id: string): Promise<boolean> {
    this.secrets.delete(id);
    return this.store.credentials.remove(id);
  }

  /** Whether a principal id (principal-id.ts) names a credential, usable or not. */
  async principalExists(principalId: string): Promise<boolean> {
    const id = credentialIdOf(principalId);
    return id !== undefined && (await this.cache.get(id)) !== undefined;
  }

  async isEmpty(): Promise<boolean> {
    return (await this.store.credentials.count()) === 0;
  }

  /** Stops the cache's listening to the store's changes. */
  close(): void {
    this.cache.close();
  }

  /**
   * The usable AK/SK credential of an access key, with its secret key, or undefined when there is
   * none (unknown, disabled, expired). The record comes from the cache, which the store's change
   * feed empties (CredentialCache), so disabling or deleting a credential takes effect at once in
   * this process, and within the cache's backstop in every other sharing the store.
   */
  async accessKey(accessKey: string): Promise<{ record: CredentialRecord; secret: Buffer } | undefined> {
    const record = await this.cache.get(accessKey);
    if (!record || record.kind !== 'aksk' || !this.usable(record) || !record.sealedSecret) return undefined;
    const cached = this.secrets.get(accessKey);
    if (cached && cached.sealed.equals(record.sealedSecret)) return { record, secret: cached.secret };
    const secret = await this.unseal(record);
    if (this.secrets.size >= SECRET_CACHE_LIMIT) this.secrets.clear();
    this.secrets.set(accessKey, { sealed: record.sealedSecret, secret });
    return { record, secret };
  }

  /** The usable token credential of a token, or undefined. */
  async token(token: string): Promise<CredentialRecord | undefined> {
    const record = await this.cache.getByTokenHash(hashToken(token));
    return record && record.kind === 'token' && this.usable(record) ? record : undefined;
  }

  private usable(record: CredentialRecord): boolean {
    return record.enabled && (record.expiresAt === null || record.expiresAt > this.clock());
  }

  private async unseal(record: CredentialRecord): Promise<Buffer> {
    const sealed = record.sealedSecret!;
    if (sealed[0] !== SEAL_FORMAT) throw new KmsError('KMS.0103', { cause: new Error(`credential ${record.id}: unknown seal format`) });
    return this.hsm.symmetric.decrypt(
      CREDENTIAL_SEALING_KEY,
      { iv: sealed.subarray(1, 1 + IV_BYTES), ciphertext: sealed.subarray(1 + IV_BYTES) },
      sealingAad(record.id, record.projectId),
    );
  }
}

/** A credential asked for with options it cannot have: the caller's input, not a failure (the CLI's exit code 2). */
export class CredentialOptionsError extends Error {}

function checkOptions(options: CredentialOptions): void {
  if (!PROJECT_ID.test(options.projectId)) throw new CredentialOptionsError('a project id is 1 to 64 letters, digits, "_" or "-"');
  if (options.actions.length === 0) throw new CredentialOptionsError('a credential needs at least one action');
  const problem = actionPatternProblem(options.actions);
  if (problem !== undefined) throw new CredentialOptionsError(problem);
}
