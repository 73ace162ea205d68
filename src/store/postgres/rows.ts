import type { GranteeType } from '../../domain/grants';
import type { KeyState } from '../../domain/keys';
import type { CredentialKind } from '../../domain/credentials';

/**
 * Checks of what the database hands back, where a column's type is wider than the domain's: the
 * CHECK constraints and the services keep these columns to the domain's values, and a row that is
 * not is refused here rather than carried on under a false type.
 */

const KEY_STATES: readonly KeyState[] = ['1', '2', '3', '4', '5'];

export function keyState(value: string): KeyState {
  const state = KEY_STATES.find((known) => known === value);
  if (state === undefined) throw new Error(`the store holds an unknown key state: ${JSON.stringify(value)}`);
  return state;
}

export function granteeType(value: string): GranteeType {
  if (value === 'user' || value === 'domain') return value;
  throw new Error(`the store holds an unknown grantee type: ${JSON.stringify(value)}`);
}

export function credentialKind(value: string): CredentialKind {
  if (value === 'aksk' || value === 'token') return value;
  throw new Error(`the store holds an unknown credential kind: ${JSON.stringify(value)}`);
}
