import type { KeyRecord, MaterialRef } from '../domain/keys';
import { KmsError } from '../errors';
import type { KeySpec, KeyUsage } from '../hsm/hsm';
import { KEY_KINDS, kindOf } from '../hsm/key-kinds';
import type { KeyKind, KindFamily } from '../hsm/key-kinds/key-kind';

/** Specs the API names that need vendor mechanisms (SM2, SM3, SM4) no module here offers. */
const VENDOR_SPECS: ReadonlySet<string> = new Set(['SM2', 'SM4', 'HMAC_SM3']);

const USAGES: readonly KeyUsage[] = ['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT'];

function isKeyUsage(text: string): text is KeyUsage {
  return (USAGES as readonly string[]).includes(text);
}

/** The code Huawei KMS answers for a usage the kind cannot serve: its own for an EC key to encrypt and an AES key to sign. */
function mismatchCode(kind: KeyKind, usage: KeyUsage): 'KMS.1114' | 'KMS.1115' | 'KMS.0308' {
  if (kind.family.name === 'EC' && usage === 'ENCRYPT_DECRYPT') return 'KMS.1114';
  if (kind.family.name === 'AES' && usage === 'SIGN_VERIFY') return 'KMS.1115';
  return 'KMS.0308';
}

/** The key kind a key_spec names (a record's, or a request's), if any: found by comparison, never by a client's string as an object key. */
export function keySpecOf(name: string): KeySpec | undefined {
  // A loop, not a spread and find: the purpose checks ask this of every request's key.
  for (const spec of KEY_KINDS.keys()) if (spec === name) return spec;
  return undefined;
}

/** A stored key's spec as the HSM seam names it: a record names only specs create-key made, so another is a defect (KMS.0103). */
export function recordSpec(record: Pick<KeyRecord, 'keyId' | 'keySpec'>): KeySpec {
  const spec = keySpecOf(record.keySpec);
  if (spec === undefined) throw new KmsError('KMS.0103', { cause: new Error(`key ${record.keyId} has spec ${record.keySpec}, which no key kind serves`) });
  return spec;
}

/** A stored key's family and its parameters (its kind's: a modulus, a curve, an HMAC algorithm), for the services' rules. */
export function recordFamily(record: Pick<KeyRecord, 'keyId' | 'keySpec'>): KindFamily {
  return kindOf(recordSpec(record)).family;
}

/** The HSM objects of a key's current material version. */
export function currentMaterial(record: Pick<KeyRecord, 'keyId' | 'materialVersion'>): MaterialRef {
  return { keyId: record.keyId, version: record.materialVersion };
}

/**
 * create-key's key_spec and key_usage as a key kind and one of its usages (the kind's default
 * when none is named: SIGN_VERIFY for key pairs, GENERATE_VERIFY_MAC for HMAC). Whether this HSM
 * can make it is the caller's next question (Hsm.supports). A spec or usage that is not one, or a
 * pair that makes no sense (an EC key to encrypt, an AES key to sign), is a 400.
 */
export function keyKindOf(specText: string | undefined, usageText: string | undefined): { spec: KeySpec; usage: KeyUsage } {
  const name = specText ?? 'AES_256';
  if (VENDOR_SPECS.has(name)) {
    throw new KmsError('KMS.0308', { detail: `key_spec: ${name} needs vendor (SM) mechanisms that this service's HSM does not have.` });
  }
  const spec = keySpecOf(name);
  const kind = spec === undefined ? undefined : KEY_KINDS.get(spec);
  // The client's value is not echoed (error messages never repeat the request): the accepted ones are named instead.
  if (!kind) throw new KmsError('KMS.0308', { detail: `key_spec: must be one of ${[...KEY_KINDS.keys()].join(', ')}.` });
  if (usageText === undefined) return { spec: kind.spec, usage: kind.defaultUsage };
  if (!isKeyUsage(usageText)) throw new KmsError('KMS.0308', { detail: `key_usage: must be one of ${USAGES.join(', ')}.` });
  const usage = usageText;
  if (!kind.usages.has(usage)) {
    throw new KmsError(mismatchCode(kind, usage), { detail: `key_usage: ${kind.spec} keys can be made for ${[...kind.usages.keys()].join(' or ')}, not ${usage}.` });
  }
  return { spec: kind.spec, usage };
}
