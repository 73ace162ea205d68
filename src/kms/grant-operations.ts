import type { GrantOperation } from './api-types';

/**
 * The operations a grant may allow, as the API names them (openapi.yaml's GrantOperation: the
 * compiler holds this list to it, both ways). Each is also the operation's path segment, so a
 * request for one of them, refused by the caller's permissions, may still be allowed by a grant.
 */
export const GRANT_OPERATIONS = [
  'create-datakey',
  'create-datakey-without-plaintext',
  'encrypt-datakey',
  'decrypt-datakey',
  'describe-key',
  'create-grant',
  'retire-grant',
  'encrypt-data',
  'decrypt-data',
  'sign',
  'verify',
  'get-publickey',
  'generate-mac',
  'verify-mac',
  'derive-shared-secret',
  'create-rsa-datakey-pair',
  'create-ec-datakey-pair',
] as const satisfies readonly GrantOperation[];

// Fails to compile when openapi.yaml names an operation the list above lacks.
const everyOperationListed: Exclude<GrantOperation, (typeof GRANT_OPERATIONS)[number]> extends never ? true : never = true;
void everyOperationListed;

const NAMES: ReadonlySet<string> = new Set(GRANT_OPERATIONS);

export function isGrantOperation(name: string): name is GrantOperation {
  return NAMES.has(name);
}
