/**
 * What a request's `key_id` may be, as in Huawei KMS: the key's own id, one of its aliases (v2,
 * `alias/…`), or an alias's URN (`kms:<region>:<project>:alias:alias/…`, the `alias_urn` the alias
 * operations answer). openapi.yaml's KeyId holds a body's key_id to these three shapes (KMS.0205);
 * the one place they are told apart is here, and the one place they are resolved is
 * KeyService.keyIdOf, which every key-taking operation goes through.
 */

/** A key's id: 36 characters, lower-case hex and hyphens (openapi.yaml's KeyId). */
const KEY_ID = /^[0-9a-z]{8}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{12}$/;
/** An alias (v2): `alias/` and 1 to 249 letters, digits, colons, slashes, underscores and hyphens (255 in all, as create-key's key_alias). */
export const ALIAS = /^alias\/[a-zA-Z0-9:/_-]{1,249}$/;
/** Aliases a key may hold: an alias names one key, and a project's keys are counted (KMS_MAX_KEYS_PER_PROJECT), so nothing grows without bound. */
export const MAX_ALIASES_PER_KEY = 50;

export type KeyReference = { readonly kind: 'id'; readonly keyId: string } | { readonly kind: 'alias'; readonly alias: string };

/** The URN of an alias of `projectId` in `region`, as Huawei KMS spells it (`kms:cn-north-7:<domain>:alias:<alias>`). */
export function aliasUrn(region: string, projectId: string, alias: string): string {
  return `kms:${region}:${projectId}:alias:${alias}`;
}

/**
 * What `value` names in the project: a key id, or an alias (given as itself or as its URN). A URN
 * of another region or project names nothing here (undefined: the key does not exist), as does
 * any other string (the contract refuses those in bodies already).
 */
export function keyReference(value: string, region: string, projectId: string): KeyReference | undefined {
  if (KEY_ID.test(value)) return { kind: 'id', keyId: value };
  if (ALIAS.test(value)) return { kind: 'alias', alias: value };
  const prefix = aliasUrn(region, projectId, '');
  if (value.startsWith(prefix) && ALIAS.test(value.slice(prefix.length))) return { kind: 'alias', alias: value.slice(prefix.length) };
  return undefined;
}

/** An alias's URN, of any region and project. */
const URN = /^kms:[^:]{1,64}:[A-Za-z0-9_-]{1,64}:alias:alias\/[a-zA-Z0-9:/_-]{1,249}$/;

/** Whether `value` has one of the three shapes (of whatever region or project): what a query's key_id is checked against. */
export function isKeyReferenceShape(value: string): boolean {
  return KEY_ID.test(value) || ALIAS.test(value) || URN.test(value);
}
