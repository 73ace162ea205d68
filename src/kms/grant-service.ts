import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { KmsError } from '../errors';
import { principalIdOf } from '../identity/principal-id';
import { GrantKeyGoneError, GrantParentGoneError, GrantQuotaExceededError, type GrantPrincipal, type GrantRecord } from '../domain/grants';
import { KEY_STATE } from '../domain/keys';
import type { GrantRepository } from '../domain/repositories';
import type {
  CreateGrantRequest,
  CreateGrantResponse,
  EmptyResponse,
  Grant,
  ListGrantsRequest,
  ListGrantsResponse,
  ListRetirableGrantsRequest,
  RevokeGrantRequest,
} from './api-types';
import type { Clock, Principal, RequestContext } from './context';
import { isGrantOperation } from './grant-operations';
import type { KeyGrants, KeyService } from './key-service';

const MAX_LIST_LIMIT = 1000;

/** Grants name a principal by its principal id, and a domain by its project. */
function asGrantPrincipal(principal: Principal): GrantPrincipal {
  return { principalId: principalIdOf(principal.id), projectId: principal.projectId };
}

/** Whether `grant` names `principal` as its grantee. */
function isGrantee(grant: GrantRecord, principal: GrantPrincipal): boolean {
  return grant.granteeType === 'user' ? grant.granteePrincipal === principal.principalId : grant.granteePrincipal === principal.projectId;
}

/** Whether `principal` may retire `grant` on the grant's own authority: as its retiring principal, or as its grantee when it lists retire-grant. */
function mayRetire(grant: GrantRecord, principal: GrantPrincipal): boolean {
  return grant.retiringPrincipal === principal.principalId || (isGrantee(grant, principal) && grant.operations.includes('retire-grant'));
}

/** Whether `grant` lets `principal` perform `operation` on its key. */
function allows(grant: GrantRecord, principal: GrantPrincipal, operation: string): boolean {
  if (operation === 'retire-grant') return mayRetire(grant, principal);
  return isGrantee(grant, principal) && grant.operations.includes(operation);
}

/** A list's limit and marker: JSON-string integers the schema limited to digits. */
function page(limit: string | undefined, marker: string | undefined): { limit: number; offset: number } {
  const parsedLimit = limit === undefined ? MAX_LIST_LIMIT : /^\d{1,10}$/.test(limit) ? Number(limit) : NaN;
  if (!(parsedLimit >= 1 && parsedLimit <= MAX_LIST_LIMIT)) throw new KmsError('KMS.1601');
  const offset = marker === undefined || marker === '' ? 0 : /^\d{1,10}$/.test(marker) ? Number(marker) : NaN;
  if (!(offset >= 0 && offset <= 2 ** 31)) throw new KmsError('KMS.1602');
  return { limit: parsedLimit, offset };
}

function grantView(record: GrantRecord): Grant {
  return {
    key_id: record.keyId,
    grant_id: record.grantId,
    grantee_principal: record.granteePrincipal,
    grantee_principal_type: record.granteeType,
    // Stored from a request the schema checked against the same names: the filter only narrows the type.
    operations: record.operations.filter(isGrantOperation),
    issuing_principal: record.issuingPrincipal,
    creation_date: String(record.creationDate),
    name: record.name,
    retiring_principal: record.retiringPrincipal ?? '',
  };
}

function listed(result: { records: GrantRecord[]; total: number }, offset: number): ListGrantsResponse {
  const truncated = offset + result.records.length < result.total;
  return {
    grants: result.records.map(grantView),
    next_marker: truncated ? String(offset + result.records.length) : '',
    truncated: truncated ? 'true' : 'false',
    total: result.total,
  };
}

/**
 * Which grant lets a request that its permissions did not allow act on a key (KeyService asks,
 * when it resolves the key: see RequestContext.access). Read from the database on every such
 * request, so a revoked or retired grant stops working at once, in every process.
 */
export class GrantAccess implements KeyGrants {
  constructor(
    private readonly store: GrantRepository,
    private readonly clock: Clock,
  ) {}

  async grantFor(ctx: RequestContext, keyId: string): Promise<GrantRecord | undefined> {
    if (ctx.access.by !== 'grant') return undefined;
    const { operation } = ctx.access;
    const principal = asGrantPrincipal(ctx.principal);
    return (await this.store.naming(ctx.projectId, keyId, principal, this.clock())).find((grant) => allows(grant, principal, operation));
  }

  /**
   * The grant on whose authority the caller may make a grant of `operations` on the key: one that
   * names it as grantee, lists create-grant, and lists every one of `operations` (the oldest such).
   * One grant, not the union of several: the new grant is ended with that one, so it may hold no
   * more than that one does.
   */
  async parentFor(ctx: RequestContext, keyId: string, operations: readonly string[]): Promise<GrantRecord | undefined> {
    const principal = asGrantPrincipal(ctx.principal);
    return (await this.store.naming(ctx.projectId, keyId, principal, this.clock())).find((grant) => allows(grant, principal, 'create-grant') && operations.every((operation) => grant.operations.includes(operation)));
  }
}

export interface GrantServiceDeps {
  readonly store: GrantRepository;
  readonly access: GrantAccess;
  readonly keys: KeyService;
  /** Whether a principal id names a credential of this service (CredentialService). */
  readonly principalExists: (principalId: string) => Promise<boolean>;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly maxGrantsPerKey: number;
}

/**
 * Grants: a key's administrator lets a principal (a credential of this project or of another,
 * or every credential of a project) use one key for some operations, without the permission.
 */
export class GrantService {
  constructor(private readonly deps: GrantServiceDeps) {}

  /**
   * A caller allowed create-grant only by a grant makes the new grant on that grant's authority
   * (its parent): it may pass on no more than that one grant lists (403 KMS.0307 otherwise, as
   * before: the caller has no permission to pass on more), and the
   * new grant ends when the parent does (revoked or retired, see remove). Grants have no expiry in
   * this API, so ending with the parent is all "never outlives it" needs; the new grant's own
   * retiring principal can only end it sooner.
   */
  async createGrant(ctx: RequestContext, request: CreateGrantRequest): Promise<CreateGrantResponse> {
    const { store, access, keys, clock, logger } = this.deps;
    const key = await keys.visibleKey(ctx, request.key_id);
    if (key.state === KEY_STATE.pendingDeletion) throw new KmsError('KMS.0210');
    const operations = [...new Set(request.operations)];
    if (operations.every((operation) => operation === 'create-grant')) throw new KmsError('KMS.2401');
    const granteeType = request.grantee_principal_type ?? 'user';
    if (granteeType === 'user' && !(await this.deps.principalExists(request.grantee_principal))) {
      throw new KmsError('KMS.2402', { detail: 'grantee_principal names no credential.' });
    }
    if (request.retiring_principal !== undefined && !(await this.deps.principalExists(request.retiring_principal))) {
      throw new KmsError('KMS.2402', { detail: 'retiring_principal names no credential.' });
    }
    let parentGrantId: string | null = null;
    if (ctx.access.by === 'grant') {
      const parent = await access.parentFor(ctx, key.keyId, operations);
      // The caller holds create-grant on this key (visibleKey checked), so it may know what its own grant lists.
      if (!parent) throw new KmsError('KMS.0307', { detail: 'operations must all be listed by the grant that allows create-grant.' });
      parentGrantId = parent.grantId;
      ctx.actedOn.viaGrantId = parent.grantId;
    }
    const grantId = randomBytes(32).toString('hex');
    try {
      await store.insert(
        {
          grantId,
          keyId: key.keyId,
          name: request.name ?? '',
          granteePrincipal: request.grantee_principal,
          granteeType,
          retiringPrincipal: request.retiring_principal ?? null,
          issuingPrincipal: principalIdOf(ctx.principal.id),
          operations,
          creationDate: clock(),
          parentGrantId,
        },
        this.deps.maxGrantsPerKey,
      );
    } catch (error) {
      if (error instanceof GrantQuotaExceededError) throw new KmsError('KMS.2404');
      if (error instanceof GrantKeyGoneError) throw new KmsError('KMS.0207');
      // Revoked meanwhile: the caller no longer holds create-grant, as if it had been before.
      if (error instanceof GrantParentGoneError) throw new KmsError('KMS.0307');
      throw error;
    }
    ctx.actedOn.grantId = grantId;
    logger.info({ requestId: ctx.requestId, projectId: ctx.projectId, keyId: key.keyId, grantId }, 'grant created');
    return { grant_id: grantId };
  }

  /** By the key's administrator (the permission; no grant allows revoke-grant). */
  async revokeGrant(ctx: RequestContext, request: RevokeGrantRequest): Promise<EmptyResponse> {
    const grant = await this.grantOfKey(ctx, request);
    await this.remove(ctx, grant, 'grant revoked');
    return {};
  }

  /**
   * By the permission in the key's project, or on the grant's own authority (mayRetire): a
   * retiring principal or grantee of another project may retire it too.
   */
  async retireGrant(ctx: RequestContext, request: RevokeGrantRequest): Promise<EmptyResponse> {
    const grant = await this.grantOfKey(ctx, request);
    if (ctx.access.by === 'grant') {
      if (!mayRetire(grant, asGrantPrincipal(ctx.principal))) throw new KmsError('KMS.0307');
      // The grant retired is the one whose authority allowed it.
      ctx.actedOn.viaGrantId = grant.grantId;
    }
    await this.remove(ctx, grant, 'grant retired');
    return {};
  }

  async listGrants(ctx: RequestContext, request: ListGrantsRequest): Promise<ListGrantsResponse> {
    const key = await this.deps.keys.visibleKey(ctx, request.key_id);
    const { limit, offset } = page(request.limit, request.marker);
    return listed(await this.deps.store.forKey(key.keyId, { limit, offset, now: this.deps.clock() }), offset);
  }

  /** The grants naming the caller as retiring principal, on keys of every project: those it may retire. */
  async listRetirableGrants(ctx: RequestContext, request: ListRetirableGrantsRequest): Promise<ListGrantsResponse> {
    const { limit, offset } = page(request.limit, request.marker);
    return listed(await this.deps.store.retirable(principalIdOf(ctx.principal.id), { limit, offset, now: this.deps.clock() }), offset);
  }

  /** The grant `grant_id` of the key `key_id`: KMS.2501 when the project has no such grant, KMS.2502 when it is another key's. */
  private async grantOfKey(ctx: RequestContext, request: RevokeGrantRequest): Promise<GrantRecord> {
    const key = await this.deps.keys.visibleKey(ctx, request.key_id);
    const grant = await this.deps.store.get(ctx.projectId, request.grant_id.toLowerCase(), this.deps.clock());
    if (!grant) throw new KmsError('KMS.2501');
    if (grant.keyId !== key.keyId) throw new KmsError('KMS.2502');
    ctx.actedOn.grantId = grant.grantId;
    return grant;
  }

  /**
   * Ends the grant and, in the same transaction, every grant made on its authority, recursively
   * (revoked, whether the grant itself was revoked or retired): a grantee cannot keep through a
   * grant it made what it was allowed through this one. Each cascaded grant is named in
   * ctx.actedOn for an audit record of its own.
   */
  private async remove(ctx: RequestContext, grant: GrantRecord, what: string): Promise<void> {
    // Gone meanwhile (revoked or retired by another request): it is gone, as asked, and so are the
    // grants made on it (that request removed them in its transaction).
    const { cascaded } = await this.deps.store.removeWithDescendants(grant.grantId);
    ctx.actedOn.cascadedGrants = cascaded;
    const { logger } = this.deps;
    logger.info({ requestId: ctx.requestId, projectId: ctx.projectId, keyId: grant.keyId, grantId: grant.grantId }, what);
    for (const child of cascaded) {
      logger.info(
        { requestId: ctx.requestId, projectId: ctx.projectId, keyId: grant.keyId, grantId: child.grantId, parentGrantId: child.parentGrantId },
        'grant revoked with the grant it was made on',
      );
    }
  }
}
