/** Credential records (src/domain/repositories.ts). No secret is kept in the clear: secret keys are sealed by the HSM, tokens kept as SHA-256 hashes. */

export type CredentialKind = 'aksk' | 'token';

export interface CredentialRecord {
  /** The access key, or the token's id: what logs and the audit trail name. */
  readonly id: string;
  readonly kind: CredentialKind;
  readonly projectId: string;
  readonly actions: readonly string[];
  readonly description: string;
  readonly sealedSecret: Buffer | null;
  readonly tokenHash: string | null;
  readonly enabled: boolean;
  readonly createdAt: number;
  readonly expiresAt: number | null;
}
