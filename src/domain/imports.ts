/**
 * The import state of keys whose material comes from outside (origin external, BYOK), whatever
 * store keeps it (src/domain/repositories.ts). Never the material, nor the import token: the
 * expiries of what the token holds for the key, and the HSM's fingerprint of the material.
 */
export interface ImportRecord {
  readonly keyId: string;
  /**
   * When the last import token handed out for the key expires (milliseconds since the epoch): its
   * wrapping key pair stays in the token until then, and is destroyed after (the maintenance
   * sweep), or once the material is imported. Null: no wrapping key is left.
   */
  readonly wrappingExpiresAt: number | null;
  /**
   * The HSM's fingerprint of the first material imported (AES-ECB of a zero block under it, made
   * in the token: KeyImport, src/hsm/hsm.ts), so that only the same material may come back after it
   * was deleted or expired (KMS.2606). Null until the first import; kept afterwards.
   */
  readonly fingerprint: Buffer | null;
  /** Whether the token holds the key's material now (false again once it is deleted or expired). */
  readonly imported: boolean;
  /** When the imported material expires (milliseconds since the epoch), or null for never. */
  readonly materialExpiresAt: number | null;
}

/** A key with no import record: nothing asked for, nothing imported. */
export function noImport(keyId: string): ImportRecord {
  return { keyId, wrappingExpiresAt: null, fingerprint: null, imported: false, materialExpiresAt: null };
}

/** A key the maintenance sweep is to act on. */
export interface ImportDue {
  readonly keyId: string;
  readonly projectId: string;
}
