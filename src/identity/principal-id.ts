/**
 * The id by which grants name a principal (grantee_principal, retiring_principal,
 * issuing_principal): the API allows 1 to 64 letters and digits. A principal of this service is a
 * credential, so its principal id is the credential's id made to fit: an access key's is the
 * access key itself (20 upper-case letters and digits), a token's is its id without the hyphen
 * ("tok-0a1b2c3d4e5f6a7b" → "tok0a1b2c3d4e5f6a7b"). The two forms never collide, and neither is a
 * secret.
 */

const ACCESS_KEY_ID = /^[A-Z0-9]{20}$/;
const TOKEN_PRINCIPAL_ID = /^tok([0-9a-f]{16})$/;

export function principalIdOf(credentialId: string): string {
  return credentialId.replace('-', '');
}

/** The credential a principal id names, or undefined when it cannot name one. */
export function credentialIdOf(principalId: string): string | undefined {
  if (ACCESS_KEY_ID.test(principalId)) return principalId;
  const token = TOKEN_PRINCIPAL_ID.exec(principalId);
  return token ? `tok-${token[1]}` : undefined;
}
