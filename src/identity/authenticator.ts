import { KmsError } from '../errors';
import type { Clock, Principal } from '../kms/context';
import type { CredentialService } from './credentials';
import { hasSignedHeaders, nodeCoreCanonicalUri, parseAuthorization, parseSdkDate, sign, signaturesMatch, SigningKey, type SignedRequest } from './signer';

/** How far X-Sdk-Date may be from the server's clock, either way (the API gateway's window). */
export const SIGNATURE_WINDOW_MS = 15 * 60_000;

const UNKNOWN_KEY_SECRET = new SigningKey(Buffer.alloc(40));

/** Why an authentication failed, for the audit trail (clients see only the 401 and its detail). */
export type AuthFailureReason =
  | 'no-credential'
  | 'malformed-authorization'
  | 'date-not-signed'
  /** The signature names a header the request does not carry. */
  | 'signed-header-missing'
  | 'unsigned-payload'
  | 'malformed-date'
  | 'signature-expired'
  /** Unknown, disabled or expired access key. */
  | 'unusable-access-key'
  | 'signature-mismatch'
  /** The secret key's sealed value failed GCM authentication: its database row was altered. */
  | 'sealed-secret-unauthentic'
  /** Unknown, disabled or expired token. */
  | 'unusable-token'
  /** mTLS is on and the connection has no client certificate. */
  | 'client-certificate-missing'
  /** mTLS is on and the connection's client certificate was not issued by a trusted client CA (or is expired). */
  | 'client-certificate-untrusted';

/**
 * The connection's client certificate, as the TLS handshake verified it against the client CAs
 * (src/http/client-certificate.ts): `none` without TLS, without mTLS, or when the client sent none.
 */
export type ClientCertificate = 'trusted' | 'untrusted' | 'none';

export interface AuthenticatorOptions {
  /** mTLS (KMS_TLS_CLIENT_CA_FILE): a trusted client certificate is a second factor, checked first. */
  readonly requireClientCertificate?: boolean;
}

/** The credential a request claimed: an access key's id (not a secret), never a token or a signature. */
export interface ClaimedCredential {
  readonly kind: 'access-key' | 'token' | 'none';
  /** The access key id as sent, when it looks like one; null otherwise and for tokens. */
  readonly id: string | null;
}

/** A failed authentication: the API gateway's 401, with what the audit trail records of it. */
export class AuthenticationFailure extends KmsError {
  constructor(
    readonly reason: AuthFailureReason,
    readonly claimed: ClaimedCredential,
    detail: string,
    cause?: unknown,
  ) {
    super('APIGW.0301', { detail, cause });
  }
}

/** Access key ids are short runs of letters and digits; anything else is not recorded as sent. */
const ACCESS_KEY_ID = /^[A-Za-z0-9]{1,128}$/;

function claimedAccessKey(accessKey: string | undefined): ClaimedCredential {
  return { kind: 'access-key', id: accessKey !== undefined && ACCESS_KEY_ID.test(accessKey) ? accessKey : null };
}

const NONE: ClaimedCredential = { kind: 'none', id: null };
const TOKEN: ClaimedCredential = { kind: 'token', id: null };

/** The credential a request claims, before any of it is checked. */
function claimedBy(request: SignedRequest): ClaimedCredential {
  const authorization = header(request, 'authorization');
  if (authorization !== undefined) return claimedAccessKey(parseAuthorization(authorization)?.accessKey);
  return header(request, 'x-auth-token') === undefined ? NONE : TOKEN;
}

/**
 * Establishes who sent a request: an SDK-HMAC-SHA256 signature by an access key, or an
 * X-Auth-Token. Every failure is the same 401 (APIGW.0301, an {@link AuthenticationFailure}) with
 * a detail that never says whether an access key or token exists.
 */
export class Authenticator {
  /**
   * Each unsealed secret's SigningKey, made on its first use. Keyed by the secret's Buffer, which
   * the credential service keeps while the credential is cached and replaces when it changes: an
   * entry goes when its secret does (a WeakMap holds no key alive), so this grows no further than
   * that cache.
   */
  private readonly signingKeys = new WeakMap<Buffer, SigningKey>();

  constructor(
    private readonly credentials: CredentialService,
    private readonly clock: Clock,
    private readonly options: AuthenticatorOptions = {},
  ) {}

  async authenticate(request: SignedRequest, clientCertificate: ClientCertificate = 'none'): Promise<Principal> {
    // The second factor before the first: without it no signature is checked and no secret unsealed.
    if (this.options.requireClientCertificate && clientCertificate !== 'trusted') {
      // The client is told only that a (trusted) certificate is needed, never why its own was refused.
      const [reason, detail] =
        clientCertificate === 'none'
          ? (['client-certificate-missing', 'Client certificate required.'] as const)
          : (['client-certificate-untrusted', 'Client certificate not trusted.'] as const);
      throw new AuthenticationFailure(reason, claimedBy(request), detail);
    }
    const authorization = header(request, 'authorization');
    if (authorization !== undefined) return this.bySignature(request, authorization);
    const token = header(request, 'x-auth-token');
    if (token !== undefined) return this.byToken(token);
    throw new AuthenticationFailure('no-credential', NONE, 'Sign the request (SDK-HMAC-SHA256) or send an X-Auth-Token.');
  }

  private async bySignature(request: SignedRequest, authorization: string): Promise<Principal> {
    const parsed = parseAuthorization(authorization);
    const claimed = claimedAccessKey(parsed?.accessKey);
    const refused = (reason: AuthFailureReason, detail: string, cause?: unknown): AuthenticationFailure =>
      new AuthenticationFailure(reason, claimed, detail, cause);
    if (!parsed) throw refused('malformed-authorization', 'Malformed Authorization header: expected SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...');
    // The date must be signed, or a captured request could be replayed with a fresh one.
    if (!parsed.signedHeaders.includes('x-sdk-date')) throw refused('date-not-signed', 'X-Sdk-Date must be a signed header.');
    if (!hasSignedHeaders(request, parsed.signedHeaders)) throw refused('signed-header-missing', 'Every signed header must be sent.');
    // The body must be signed: this API has no streaming bodies that could justify an unsigned one.
    if (header(request, 'x-sdk-content-sha256') !== undefined) throw refused('unsigned-payload', 'Unsigned payloads are not accepted.');
    const sdkDate = header(request, 'x-sdk-date') ?? '';
    const signedAt = parseSdkDate(sdkDate);
    if (signedAt === undefined) throw refused('malformed-date', 'X-Sdk-Date must be YYYYMMDDTHHMMSSZ.');
    if (Math.abs(this.clock() - signedAt) > SIGNATURE_WINDOW_MS) {
      throw refused('signature-expired', `Signature expired: signed at ${sdkDate}, more than 15 minutes from the server's time.`);
    }

    const credential = await this.unsealed(parsed.accessKey, claimed);
    // An unknown access key costs the same HMAC as a known one, so timing tells nothing either.
    const key = credential ? this.signingKey(credential.secret) : UNKNOWN_KEY_SECRET;
    const expected = sign(key, request, parsed.signedHeaders, sdkDate);
    if (!credential) throw refused('unusable-access-key', 'Verify AK/SK signature failed.');
    if (!signaturesMatch(expected, parsed.signature) && !this.signedAsNodeCore(key, request, parsed.signedHeaders, sdkDate, parsed.signature)) {
      throw refused('signature-mismatch', 'Verify AK/SK signature failed.');
    }
    const { record } = credential;
    return { kind: 'access-key', id: record.id, projectId: record.projectId, actions: record.actions };
  }

  /**
   * Whether the signature is over the path as the official Node.js core signs a path parameter
   * holding a character its url.parse escapes on its own (a tag key with a space: signer.ts,
   * nodeCoreCanonicalUri). Only such paths get this second HMAC; both forms are of the path as
   * received, so neither lets a signature stand for another path.
   */
  private signedAsNodeCore(key: SigningKey | Buffer, request: SignedRequest, signedHeaders: readonly string[], sdkDate: string, signature: string): boolean {
    const uri = nodeCoreCanonicalUri(request.path);
    return uri !== undefined && signaturesMatch(sign(key, request, signedHeaders, sdkDate, uri), signature);
  }

  private signingKey(secret: Buffer): SigningKey {
    let key = this.signingKeys.get(secret);
    if (key === undefined) {
      key = new SigningKey(secret);
      this.signingKeys.set(secret, key);
    }
    return key;
  }

  /**
   * The credential and its secret. A sealed secret that fails GCM authentication (its database row
   * was altered) is refused like a wrong signature: 401, nothing said about the key. Every other
   * failure is the server's, not the caller's: the HSM unavailable stays 503; a missing sealing key
   * (KMS.0207 from the HSM), an HSM fault or a database error is 500, logged at error level with
   * its cause by the error reply, never a "wrong credentials" 401 that would hide it.
   */
  private async unsealed(accessKey: string, claimed: ClaimedCredential): Promise<Awaited<ReturnType<CredentialService['accessKey']>>> {
    try {
      return await this.credentials.accessKey(accessKey);
    } catch (error) {
      if (error instanceof KmsError && error.code === 'KMS.2201') {
        throw new AuthenticationFailure('sealed-secret-unauthentic', claimed, 'Verify AK/SK signature failed.', error);
      }
      if (error instanceof KmsError && error.status >= 500) throw error;
      throw new KmsError('KMS.0103', { cause: error });
    }
  }

  private async byToken(token: string): Promise<Principal> {
    const record = await this.credentials.token(token);
    if (!record) throw new AuthenticationFailure('unusable-token', TOKEN, 'Invalid or expired X-Auth-Token.');
    return { kind: 'token', id: record.id, projectId: record.projectId, actions: record.actions };
  }
}

function header(request: SignedRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
