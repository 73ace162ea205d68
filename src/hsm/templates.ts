import * as graphene from 'graphene-pk11';
import type { MaterialRef } from './hsm';

/**
 * How the service names its objects in the token, and the attribute templates that find them (as
 * graphene templates). What each key kind's objects may do is decided by its template in
 * key-kinds/, and nowhere else.
 */

const LABEL_PREFIX = 'kms/';

/** CKA_ID: the key's 16 UUID bytes followed by the material version as a 32-bit big-endian number. */
export function objectId(ref: MaterialRef): Buffer {
  const id = Buffer.alloc(20);
  Buffer.from(ref.keyId.replace(/-/g, ''), 'hex').copy(id, 0);
  id.writeUInt32BE(ref.version, 16);
  return id;
}

/** CKA_LABEL: readable in vendor tools, e.g. `kms/0d0466b0-e727-4d9c-b35d-f84bb474a37f/v0`. */
export function objectLabel(ref: MaterialRef): string {
  return `${LABEL_PREFIX}${ref.keyId}/v${ref.version}`;
}

/** The reference a label stands for, or undefined for objects that are not ours. */
export function parseObjectLabel(label: string): MaterialRef | undefined {
  const match = /^kms\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/v(\d{1,10})$/.exec(label);
  if (!match) return undefined;
  return { keyId: match[1]!, version: Number(match[2]) };
}

/** Finds every token object of one key's material (of any class) by its CKA_ID. */
export function findMaterialTemplate(ref: MaterialRef): graphene.ITemplate {
  return { token: true, id: objectId(ref) };
}

/**
 * Finds every persistent secret key, to enumerate the token once at start-up (key kinds with other
 * object classes add theirs). By class, not every object: a module need not be able to read the
 * attributes of an object that is none of ours, and SoftHSM cannot read one whose file a killed
 * process left half-written.
 */
export const ALL_SECRET_KEYS_TEMPLATE: graphene.ITemplate = { class: graphene.ObjectClass.SECRET_KEY, token: true };
