/**
 * Permissions are the API's IAM action names (`kms:cmk:create`, `kms:dek:crypto`, ...). A
 * credential holds a list of patterns in which `*` stands for any run of characters, so `kms:*`
 * allows everything and `kms:dek:*` allows the data key operations only.
 */

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
