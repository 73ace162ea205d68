import type * as graphene from 'graphene-pk11';
import type { KeySpec, KeyUsage, MacAlgorithm, MaterialRef } from '../hsm';
import type { KeyObjectClass, KeyUse } from '../templates';

/** A mechanism a key kind needs, as C_GetMechanismInfo must report it. */
export interface MechanismNeed {
  readonly type: number;
  readonly name: string;
  /** The CKF_ flags the module must report for it (CKF_SIGN, CKF_DECRYPT, CKF_GENERATE_KEY_PAIR, ...). */
  readonly flags: number;
  /**
   * A key size the mechanism's [ulMinKeySize, ulMaxKeySize] must include, in the mechanism's unit
   * (bits for RSA and EC, bytes for AES and HMAC); none when modules disagree on the unit (generic
   * secret generation: the kind's probe checks it then).
   */
  readonly keySize?: number;
}

/** A Weierstrass curve as the token (its CKA_EC_PARAMS), Node (its names) and the encodings (its coordinates' size) know it. */
export interface Curve {
  /** DER of the curve's OID, the CKA_EC_PARAMS of its keys. */
  readonly params: Buffer;
  /** The curve's JWK name (crv), in which public keys are handed to Node's crypto. */
  readonly jwk: string;
  /** Node's name of the curve (KeyObject.asymmetricKeyDetails.namedCurve), to check a peer's key. */
  readonly node: string;
  /** The size of a coordinate and of ECDSA's r and s, in bytes. */
  readonly bytes: number;
  readonly bits: number;
}

/**
 * What the roles and the services must know of a kind's keys beyond its objects and mechanisms,
 * by family: an RSA modulus's size, a curve, an HMAC key's one algorithm. They ask the kind
 * (KEY_KINDS), never the spec's name.
 */
export type KindFamily =
  | { readonly name: 'AES' }
  | { readonly name: 'RSA'; readonly bits: number }
  | { readonly name: 'EC'; readonly curve: Curve }
  | { readonly name: 'EDWARDS' }
  | { readonly name: 'HMAC'; readonly mac: MacAlgorithm };

/** Any one of these mechanisms will do (a combined hash-and-sign mechanism, or the service hashes and the token signs the digest). */
export type MechanismChoice = readonly MechanismNeed[];

/** What a key pair's two objects may do. */
export interface PairUses {
  readonly private: readonly KeyUse[];
  readonly public: readonly KeyUse[];
}

/** One object the generation made. */
export interface GeneratedObject {
  readonly objectClass: KeyObjectClass;
  readonly handle: Buffer;
}

/**
 * One kind of key material behind the seam (one `key_spec`): its object classes, the mechanisms it
 * needs to be generated and for each usage, its templates (through templates.ts's one builder), and
 * how its public key becomes a SubjectPublicKeyInfo. The role implementations in ../roles/ serve
 * every kind; a new key spec is a new KeyKind file and one line in ./index.ts (the KeySpec type
 * is the list's specs). `S` is the spec's own name, for that list.
 */
export interface KeyKind<S extends string = KeySpec> {
  readonly spec: S;
  readonly family: KindFamily;
  /** What one material version is in the token: a secret key, or a private and a public key. */
  readonly objectClasses: readonly KeyObjectClass[];
  /** The usage of a key made without one (create-key's default for the spec). */
  readonly defaultUsage: KeyUsage;
  /** What generation needs: every one of these. */
  readonly generation: readonly MechanismNeed[];
  /** The usages the kind can serve, each with what it needs: every choice, each by one of its mechanisms. */
  readonly usages: ReadonlyMap<KeyUsage, readonly MechanismChoice[]>;
  /**
   * A check at start-up of what the mechanism list cannot say (a curve: the list has one EC key
   * pair mechanism for every curve; a secret's length: modules disagree on the unit of its sizes),
   * on a session, with session objects it destroys. Throws when the module cannot make the kind.
   */
  probe?(session: graphene.Session): void | Promise<void>;
  /**
   * Generates the material of `ref` for `usage` on `session` (asynchronously, off the event loop: on a
   * network HSM a key generation is a round trip) and resolves with the new objects.
   */
  generate(session: graphene.Session, ref: MaterialRef, usage: KeyUsage): Promise<GeneratedObject[]>;
  /** Key-pair kinds: the DER SubjectPublicKeyInfo of the public key object `handle`. */
  publicKeyInfo?(session: graphene.Session, handle: Buffer): Buffer;
  /** Key-pair kinds: what the private and the public key of a key made for `usage` may do (an imported key's objects are made with the same). */
  objectUses?(usage: KeyUsage): PairUses | undefined;
}
