import * as pkcs11 from 'pkcs11js';

/** The mechanisms the service uses today: CMK generation and AES-GCM sealing. */
const REQUIRED: ReadonlyMap<number, string> = new Map([
  [pkcs11.CKM_AES_KEY_GEN, 'CKM_AES_KEY_GEN'],
  [pkcs11.CKM_AES_GCM, 'CKM_AES_GCM'],
]);

/** The names of the required mechanisms that `offered` (a token's C_GetMechanismList) lacks. */
export function missingMechanisms(offered: readonly number[]): string[] {
  const have = new Set(offered);
  return [...REQUIRED].filter(([mechanism]) => !have.has(mechanism)).map(([, name]) => name);
}
