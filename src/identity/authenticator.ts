import { KmsError } from '../errors';
import type { Clock, Principal } from '../kms/context';
import type { CredentialService } from './credentials';
import { parseAuthorization, parseSdkDate, sign, signaturesMatch, type SignedRequest } from './signer';

/** How far X-Sdk-Date may be from the server's clock, either way (the API gateway's window). */
export const SIGNATURE_WINDOW_MS = 15 * 60_000;

const UNKNOWN_KEY_SECRET = Buffer.alloc(40);

const refused = (detail: string, cause?: unknown): KmsError => new KmsError('APIGW.0301', { detail, cause });

/**
 * Establishes who sent a request: an SDK-HMAC-SHA256 signature by an access key, or an
 * X-Auth-Token. Every failure is the same 401 (APIGW.0301) with a reason that never says whether
 * an access key or token exists.
 */
export class Authenticator {
  constructor(
    private readonly credentials: CredentialService,
    private readonly clock: Clock,
  ) {}

  async authenticate(request: SignedRequest): Promise<Principal> {
    const authorization = header(request, 'authorization');
    if (authorization !== undefined) return this.bySignature(request, authorization);
    const token = header(request, 'x-auth-token');
    if (token !== undefined) return this.byToken(token);
    throw refused('Sign the request (SDK-HMAC-SHA256) or send an X-Auth-Token.');
  }

  private async bySignature(request: SignedRequest, authorization: string): Promise<Principal> {
    const parsed = parseAuthorization(authorization);
    if (!parsed) throw refused('Malformed Authorization header: expected SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...');
    // The date must be signed, or a captured request could be replayed with a fresh one.
    if (!parsed.signedHeaders.includes('x-sdk-date')) throw refused('X-Sdk-Date must be a signed header.');
    // The body must be signed: this API has no streaming bodies that could justify an unsigned one.
    if (header(request, 'x-sdk-content-sha256') !== undefined) throw refused('Unsigned payloads are not accepted.');
    const sdkDate = header(request, 'x-sdk-date') ?? '';
    const signedAt = parseSdkDate(sdkDate);
    if (signedAt === undefined) throw refused('X-Sdk-Date must be YYYYMMDDTHHMMSSZ.');
    if (Math.abs(this.clock() - signedAt) > SIGNATURE_WINDOW_MS) {
      throw refused(`Signature expired: signed at ${sdkDate}, more than 15 minutes from the server's time.`);
    }

    const credential = await this.unsealed(parsed.accessKey);
    // An unknown access key costs the same HMAC as a known one, so timing tells nothing either.
    const expected = sign(credential?.secret ?? UNKNOWN_KEY_SECRET, request, parsed.signedHeaders, sdkDate);
    if (!credential || !signaturesMatch(expected, parsed.signature)) throw refused('Verify AK/SK signature failed.');
    const { record } = credential;
    return { kind: 'access-key', id: record.id, projectId: record.projectId, actions: record.actions };
  }

  /**
   * The credential and its secret. A sealed secret that fails GCM authentication (its database row
   * was altered) is refused like a wrong signature: 401, nothing said about the key. Every other
   * failure is the server's, not the caller's: the HSM unavailable stays 503; a missing sealing key
   * (KMS.0207 from the HSM), an HSM fault or a database error is 500, logged at error level with
   * its cause by the error reply, never a "wrong credentials" 401 that would hide it.
   */
  private async unsealed(accessKey: string): Promise<Awaited<ReturnType<CredentialService['accessKey']>>> {
    try {
      return await this.credentials.accessKey(accessKey);
    } catch (error) {
      if (error instanceof KmsError && error.code === 'KMS.2201') throw refused('Verify AK/SK signature failed.', error);
      if (error instanceof KmsError && error.status >= 500) throw error;
      throw new KmsError('KMS.0103', { cause: error });
    }
  }

  private byToken(token: string): Principal {
    const record = this.credentials.token(token);
    if (!record) throw refused('Invalid or expired X-Auth-Token.');
    return { kind: 'token', id: record.id, projectId: record.projectId, actions: record.actions };
  }
}

function header(request: SignedRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
