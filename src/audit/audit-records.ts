import type { AuthFailureReason, ClaimedCredential } from '../identity/authenticator';

/**
 * What the audit chains hold: one JSON line per event, each naming its `event`. Records name who,
 * what, which key or credential, from where, and how it ended; never a secret (a secret key, a
 * token, a signature, a data key, a plaintext) and no free text a client chose (an alias is named:
 * the contract holds it to `alias/` and letters, digits and `:/_-`). The chain adds to each
 * line the `instance` that wrote it (KMS_INSTANCE_ID; lines written before release 2026-12 have
 * none), `prev` and `hash` (audit-log.ts).
 */

/** A request that reached an operation (after authentication). */
export interface AuditRecord {
  /** ISO 8601 time the request arrived. */
  readonly time: string;
  readonly event: 'operation';
  readonly request_id: string;
  readonly principal: { readonly kind: string; readonly id: string };
  readonly project_id: string;
  /** The operation, e.g. "create-datakey". */
  readonly action: string;
  /** The permission it needs, e.g. "kms:dek:create". */
  readonly permission: string;
  /** The key the service acted on, resolved in the caller's project; null when none was. */
  readonly key_id: string | null;
  /** re-encrypt only: the key the ciphertext was sealed under before (key_id: the one it is sealed under now). */
  readonly source_key_id?: string | null;
  /** sign and verify: the signing algorithm the request named; generate-mac and verify-mac: the mac_algorithm (never the message, signature or MAC). */
  readonly algorithm?: string;
  /** create-alias, associate-alias, delete-alias: the aliases made, moved or deleted (each `alias/` and letters, digits, `:/_-` only). */
  readonly aliases?: readonly string[];
  /** associate-alias: the key the alias named before (key_id: the one it names now). */
  readonly previous_key_id?: string;
  /** create-rsa-datakey-pair and create-ec-datakey-pair: the key_spec of the pair made (never a key of it). */
  readonly key_spec?: string;
  /** decrypt-data and re-encrypt: "private-key" when they opened a data key pair's private-key blob (decrypt-data gave the private key back). */
  readonly blob?: 'private-key';
  /** The grant the request created, revoked or retired, when it did. */
  readonly grant_id?: string;
  /** The grant that allowed the request, when the principal's permissions did not. */
  readonly via_grant?: string;
  /**
   * On the extra records of a revoke-grant or retire-grant: `grant_id` ended with the grant named
   * here, on whose authority it was made (its own record names the request's grant).
   */
  readonly cascaded_from?: string;
  readonly status: number;
  /** "OK", or the KMS error code the request ended with. */
  readonly result: string;
  readonly latency_ms: number;
  readonly client: string | null;
  /**
   * Set on the records of the command-line tool (audit-cli.log), whose principal is
   * `{kind: "operator", id: <user>}`: the operating system's user and the process.
   */
  readonly operator?: { readonly user: string; readonly pid: number };
}

/**
 * Failed authentications from one client address, claiming one credential, for one reason. The
 * first of a window is recorded at once (count 1, with its request id); the ones after it in the
 * same window are counted and recorded once when the window ends (count n, first and last time).
 */
export interface AuthFailureRecord {
  /** The first failure this record counts. */
  readonly time: string;
  readonly event: 'authentication-failed';
  /** The failed request's id when the record counts one failure; null for a window's count. */
  readonly request_id: string | null;
  /** The access key id the request claimed (not a secret); null for a token, or a malformed claim. */
  readonly claimed: ClaimedCredential;
  readonly client: string | null;
  readonly reason: AuthFailureReason;
  readonly count: number;
  /** The last failure counted, when the record counts more than one. */
  readonly until?: string;
  /**
   * Set on the count of failures beyond the kinds one window tracks (a flood from many addresses
   * or with many access key ids): counted by reason only, without client or claimed credential.
   */
  readonly untracked?: true;
}

/** A change to the credentials made outside the API, in audit-cli.log: with the command-line tool (src/cli.ts), or by the first start. */
export interface CredentialChangeRecord {
  readonly time: string;
  readonly event: 'credential-change';
  readonly action: 'create' | 'enable' | 'disable' | 'delete';
  /** Identifiers only: the access key or token id, never the secret key or the token. */
  readonly credential: {
    readonly id: string;
    readonly kind?: string;
    readonly project_id?: string;
    readonly actions?: readonly string[];
    readonly expires_at?: string | null;
  };
  /** "OK", or "NOT_FOUND" when no credential has that id. */
  readonly result: 'OK' | 'NOT_FOUND';
  /** Who ran the command: the operating system's user and the process. */
  readonly operator: { readonly user: string; readonly pid: number };
  /**
   * Set when the service made the change itself: `first-start`, the admin credential it makes when
   * a data directory has none (`operator` is then the service's user and process).
   */
  readonly source?: 'first-start';
}

/**
 * `kms store copy`, in audit-cli.log: the embedded store (credentials' sealed secrets, keys, grants)
 * copied into a PostgreSQL database. Written and synced before the copy commits.
 */
export interface StoreCopyRecord {
  readonly time: string;
  readonly event: 'store-copy';
  /** The target database's URL, without its password. */
  readonly to: string;
  /** The rows copied, by table. */
  readonly rows: Readonly<Record<string, number>>;
  readonly result: 'OK';
  /** Who ran the command: the operating system's user and the process. */
  readonly operator: { readonly user: string; readonly pid: number };
}

export type AuditEntry = AuditRecord | AuthFailureRecord | CredentialChangeRecord | StoreCopyRecord;
