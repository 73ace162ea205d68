/**
 * Permissions are the API's IAM action names (`kms:cmk:create`, `kms:dek:crypto`, ...). A
 * credential holds a list of patterns in which `*` stands for any run of characters, so `kms:*`
 * allows everything and `kms:dek:*` allows the data key operations only.
 */

const ACTION_PATTERN = /^[a-z*]+(:[a-zA-Z*]+)*$/;

export function isValidActionPattern(pattern: string): boolean {
  return ACTION_PATTERN.test(pattern);
}

function toRegExp(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

/** Whether any of `patterns` allows `action`. */
export function allows(patterns: readonly string[], action: string): boolean {
  return patterns.some((pattern) => toRegExp(pattern).test(action));
}
