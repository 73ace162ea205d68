/**
 * Permissions are the API's IAM action names (`kms:cmk:create`, `kms:dek:crypto`, ...). A
 * credential holds a list of patterns in which `*` stands for any run of characters, so `kms:*`
 * allows everything and `kms:dek:*` allows the data key operations only.
 */

/**
 * Every permission an operation asks for (src/http/routes declare each operation with one of
 * these; test/unit/permissions.test.ts holds the list to the operations both ways). A credential's
 * pattern must match at least one, so that a typo (`kms:cmk:creat`) is refused when the credential
 * is made instead of silently allowing nothing.
 */
export const PERMISSIONS = [
  'kms:cmk:create',
  'kms:cmk:get',
  'kms:cmk:list',
  'kms:cmk:enable',
  'kms:cmk:disable',
  'kms:cmk:update',
  'kms:cmk:getQuota',
  'kms:cmk:getInstance',
  'kms:cmk:generate',
  'kms:cmk:crypto',
  'kms:cmk:sign',
  'kms:cmk:verify',
  'kms:cmk:getPublicKey',
  'kms:cmk:generateMac',
  'kms:cmk:verifyMac',
  'kms:cmk:deriveSharedSecret',
  'kms:cmk:enableRotation',
  'kms:cmk:disableRotation',
  'kms:cmk:updateRotation',
  'kms:cmk:getRotation',
  'kms:cmk:getMaterial',
  'kms:cmk:importMaterial',
  'kms:cmk:deleteMaterial',
  'kms:dek:create',
  'kms:dek:crypto',
  'kms:dek:createDatakeyPair',
  'kms:grant:create',
  'kms:grant:list',
  'kms:grant:revoke',
  'kms:grant:retire',
  // Aliases (v2), as Huawei's identity policies name them.
  'kms:alias:create',
  'kms:alias:list',
  'kms:alias:associate',
  'kms:alias:delete',
  // Tags, as Huawei's permissions page names them.
  'kms:cmkTag:create',
  'kms:cmkTag:batch',
  'kms:cmkTag:delete',
  'kms:cmkTag:list',
  'kms:cmkTag:listInstance',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

/** The wildcards worth naming in a refusal: everything, and each group of permissions. */
const WILDCARDS = ['kms:*', 'kms:cmk:*', 'kms:dek:*', 'kms:grant:*', 'kms:alias:*', 'kms:cmkTag:*'] as const;

const ACTION_PATTERN = /^[a-z*]+(:[a-zA-Z*]+)*$/;

export function isValidActionPattern(pattern: string): boolean {
  return ACTION_PATTERN.test(pattern);
}

/** Compiled patterns, by pattern: a credential's few patterns are checked on every request. */
const compiled = new Map<string, RegExp>();

function toRegExp(pattern: string): RegExp {
  let regExp = compiled.get(pattern);
  if (!regExp) {
    regExp = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    compiled.set(pattern, regExp);
  }
  return regExp;
}

/** Whether any of `patterns` allows `action`. */
export function allows(patterns: readonly string[], action: string): boolean {
  return patterns.some((pattern) => toRegExp(pattern).test(action));
}

/**
 * Why these patterns cannot be a credential's, in one line naming what they may be, or undefined
 * when each is a pattern that allows at least one permission.
 */
export function actionPatternProblem(patterns: readonly string[]): string | undefined {
  const malformed = patterns.filter((pattern) => !isValidActionPattern(pattern));
  if (malformed.length > 0) return `not an action pattern: ${malformed.join(', ')}; ${permissionsHint()}`;
  const unmatched = patterns.filter((pattern) => !PERMISSIONS.some((permission) => allows([pattern], permission)));
  if (unmatched.length > 0) return `${unmatched.join(', ')} ${unmatched.length === 1 ? 'matches' : 'match'} no permission; ${permissionsHint()}`;
  return undefined;
}

function permissionsHint(): string {
  return `the permissions are ${PERMISSIONS.join(', ')}, with * as a wildcard (${WILDCARDS.join(', ')})`;
}
