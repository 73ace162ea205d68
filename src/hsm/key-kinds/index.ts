import { AES_256 } from './aes-256';
import { EC_P256, EC_P384, SECP256K1 } from './ec';
import { ED25519 } from './ed25519';
import { HMAC_256, HMAC_384, HMAC_512 } from './hmac';
import type { KeyKind } from './key-kind';
import { RSA_2048, RSA_3072, RSA_4096 } from './rsa';

/** Every key kind behind the seam: a new kind is its file and one line here. */
const KINDS = [
  AES_256,
  RSA_2048,
  RSA_3072,
  RSA_4096,
  EC_P256,
  EC_P384,
  SECP256K1,
  ED25519,
  HMAC_256,
  HMAC_384,
  HMAC_512,
] as const;

/** The key kinds the API names (`key_spec`): the specs of the list above. */
export type KeySpec = (typeof KINDS)[number]['spec'];

/** The kinds by spec. */
export const KEY_KINDS: ReadonlyMap<KeySpec, KeyKind> = new Map(KINDS.map((kind) => [kind.spec, kind]));

/** The kind of `spec` (every KeySpec has one: a missing one is a defect of this list). */
export function kindOf(spec: KeySpec): KeyKind {
  const kind = KEY_KINDS.get(spec);
  if (!kind) throw new Error(`no key kind serves ${spec}`);
  return kind;
}
