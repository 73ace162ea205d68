import type * as graphene from 'graphene-pk11';
import type { KeySpec, MaterialRef } from '../hsm';

/**
 * One kind of key material behind the seam: how it is generated in the token and which mechanisms
 * the token must offer for it. Its operations are the role implementations (see ../hsm.ts) that
 * use it; a new key spec is a new KeyKind and the roles it serves, nothing else.
 */
export interface KeyKind {
  readonly spec: KeySpec;
  /** The mechanisms the token must offer (C_GetMechanismList), by PKCS#11 number and name. */
  readonly mechanisms: ReadonlyMap<number, string>;
  /**
   * Generates the material of `ref` on `session` (asynchronously, off the event loop: on a network
   * HSM a key generation is a round trip) and resolves with the new objects' handles.
   */
  generate(session: graphene.Session, ref: MaterialRef): Promise<Buffer[]>;
}
