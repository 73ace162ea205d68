import * as pkcs11 from 'pkcs11js';
import type { MaterialRef } from '../../src/hsm/hsm';
import type { SideChannel } from './side-channel';

/**
 * A key object's attributes as the token reports them, read through the side channel and found by
 * raw attributes computed here (class, CKA_ID: the key id's 16 bytes and the version's 4), not by
 * the service's templates.
 */

export type ObjectClass = 'secret' | 'private' | 'public';

const CKO: Readonly<Record<ObjectClass, number>> = {
  secret: pkcs11.CKO_SECRET_KEY,
  private: pkcs11.CKO_PRIVATE_KEY,
  public: pkcs11.CKO_PUBLIC_KEY,
};

/** The use flags each class has (a public key has no CKA_SIGN, a private key no CKA_VERIFY). */
const FLAGS: Readonly<Record<ObjectClass, Readonly<Record<string, number>>>> = {
  secret: {
    encrypt: pkcs11.CKA_ENCRYPT,
    decrypt: pkcs11.CKA_DECRYPT,
    wrap: pkcs11.CKA_WRAP,
    unwrap: pkcs11.CKA_UNWRAP,
    sign: pkcs11.CKA_SIGN,
    verify: pkcs11.CKA_VERIFY,
    derive: pkcs11.CKA_DERIVE,
  },
  private: { decrypt: pkcs11.CKA_DECRYPT, unwrap: pkcs11.CKA_UNWRAP, sign: pkcs11.CKA_SIGN, derive: pkcs11.CKA_DERIVE },
  public: { encrypt: pkcs11.CKA_ENCRYPT, wrap: pkcs11.CKA_WRAP, verify: pkcs11.CKA_VERIFY, derive: pkcs11.CKA_DERIVE },
};

/** The protection flags of secret and private keys. */
const PROTECTION: Readonly<Record<string, number>> = {
  sensitive: pkcs11.CKA_SENSITIVE,
  alwaysSensitive: pkcs11.CKA_ALWAYS_SENSITIVE,
  extractable: pkcs11.CKA_EXTRACTABLE,
  neverExtractable: pkcs11.CKA_NEVER_EXTRACTABLE,
};

export function rawObjectId(ref: MaterialRef): Buffer {
  return Buffer.from(ref.keyId.replace(/-/g, '') + ref.version.toString(16).padStart(8, '0'), 'hex');
}

/** The one token object of `ref` of `objectClass`, found by class and CKA_ID. */
export function findObject(side: SideChannel, session: Buffer, ref: MaterialRef, objectClass: ObjectClass): Buffer {
  const found = side.find(session, [
    { type: pkcs11.CKA_CLASS, value: CKO[objectClass] },
    { type: pkcs11.CKA_TOKEN, value: true },
    { type: pkcs11.CKA_ID, value: rawObjectId(ref) },
  ]);
  if (found.length !== 1) throw new Error(`${found.length} ${objectClass} key objects of ${ref.keyId}/v${ref.version}`);
  return found[0]!;
}

export interface ObjectFlags {
  readonly label: string;
  readonly token: boolean;
  readonly private: boolean;
  readonly modifiable: boolean;
  /** Each use flag of the class, by name. */
  readonly uses: Record<string, boolean>;
  /** Secret and private keys: sensitive, alwaysSensitive, extractable, neverExtractable. */
  readonly protection?: Record<string, boolean>;
}

/** The flags of `ref`'s `objectClass` object, read from the token. */
export function readFlags(side: SideChannel, ref: MaterialRef, objectClass: ObjectClass): ObjectFlags {
  return side.withSession((session) => {
    const handle = findObject(side, session, ref, objectClass);
    const uses = FLAGS[objectClass];
    const protection = objectClass === 'public' ? {} : PROTECTION;
    const types = [pkcs11.CKA_LABEL, pkcs11.CKA_TOKEN, pkcs11.CKA_PRIVATE, pkcs11.CKA_MODIFIABLE, ...Object.values(uses), ...Object.values(protection)];
    const read = side.attributes(session, handle, types);
    const bool = (type: number): boolean => (read.get(type) as Buffer)[0] === 1;
    const named = (table: Readonly<Record<string, number>>): Record<string, boolean> => Object.fromEntries(Object.entries(table).map(([name, type]) => [name, bool(type)]));
    return {
      label: (read.get(pkcs11.CKA_LABEL) as Buffer).toString(),
      token: bool(pkcs11.CKA_TOKEN),
      private: bool(pkcs11.CKA_PRIVATE),
      modifiable: bool(pkcs11.CKA_MODIFIABLE),
      uses: named(uses),
      ...(objectClass === 'public' ? {} : { protection: named(protection) }),
    };
  });
}

/** What reading `type` (a private key's secret part, a secret key's value) answers: the CKR code it throws, or undefined when it was read. */
export function readSecretPart(side: SideChannel, ref: MaterialRef, objectClass: ObjectClass, type: number): number | undefined {
  return side.withSession((session) => {
    const handle = findObject(side, session, ref, objectClass);
    try {
      side.attributes(session, handle, [type]);
      return undefined;
    } catch (error) {
      if (error instanceof pkcs11.Pkcs11Error) return error.code;
      throw error;
    }
  });
}

/** The flags a secret or private key must show: sensitive from birth, never extractable. */
export const PROTECTED = { sensitive: true, alwaysSensitive: true, extractable: false, neverExtractable: true };
