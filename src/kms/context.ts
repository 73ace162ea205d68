/** Who is asking, for which project: what every service call receives from the HTTP layer. */
export interface Principal {
  /**
   * How the caller proved who it is; `operator` is the command-line tool's user, whom the
   * operating system vouches for (src/cli).
   */
  readonly kind: 'access-key' | 'token' | 'operator';
  /** The access key or the token's id (the operating system user for an operator); never a secret. */
  readonly id: string;
  /** The project the credential belongs to. */
  readonly projectId: string;
  /** Action patterns the credential allows (see identity/permissions.ts). */
  readonly actions: readonly string[];
}

/**
 * The key a request acted on, as the service resolved it in the caller's project (never the key id
 * the client sent): set by the service once it has found or made the key, read by the audit record.
 */
export interface ActedOn {
  keyId: string | null;
  /** re-encrypt only: the key the ciphertext was sealed under before (keyId is the one it is now). */
  sourceKeyId?: string | null;
  /** sign and verify: the signing_algorithm asked for; generate-mac and verify-mac: the mac_algorithm (never the message, signature or MAC). */
  algorithm?: string;
  /**
   * create-alias, associate-alias, delete-alias: the aliases (v2) the request made, moved or
   * deleted, as the store holds them (the contract held each to its pattern: no free text).
   */
  aliases?: readonly string[];
  /** associate-alias: the key the alias named before (keyId: the one it names now). */
  previousKeyId?: string;
  /** create-rsa-datakey-pair and create-ec-datakey-pair: the key_spec of the pair made (never a key of it). */
  keySpec?: string;
  /**
   * decrypt-data and re-encrypt: set when what they opened was a data key pair's private-key
   * blob, so that a private key given back in plaintext (or moved) stands out in the audit trail.
   */
  blob?: 'private-key';
  /** The grant the request created, revoked or retired. */
  grantId?: string;
  /** The grant that allowed the request, when its permissions did not (RequestContext.access). */
  viaGrantId?: string;
  /**
   * revoke-grant and retire-grant: the grants that ended with `grantId` because they were made on
   * its authority, directly or not, each with the grant it was made on. Each gets an audit record
   * of its own.
   */
  cascadedGrants?: readonly { readonly grantId: string; readonly parentGrantId: string }[];
}

/**
 * Why the caller may perform the operation: its credential holds the permission in the project,
 * or it does not, and only a grant on the key the request names can allow it (the service checks
 * that grant when it resolves the key: see KeyService.visibleKey).
 */
export type Access = { readonly by: 'permission' } | { readonly by: 'grant'; readonly operation: string };

export interface RequestContext {
  readonly projectId: string;
  readonly requestId: string;
  readonly principal: Principal;
  readonly actedOn: ActedOn;
  readonly access: Access;
}

/** Milliseconds since the epoch; injected so that tests can move time (pending deletion windows). */
export type Clock = () => number;

export const systemClock: Clock = () => Date.now();
