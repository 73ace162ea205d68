import { KmsError } from '../../errors';
import type { KeyPairs, KeySpec, MaterialRef } from '../hsm';
import { KEY_KINDS } from '../key-kinds';
import type { KeyObjects } from '../key-objects';

/** The {@link KeyPairs} role: the public key object's attributes as DER SubjectPublicKeyInfo. */
export class Pkcs11KeyPairs implements KeyPairs {
  constructor(private readonly keys: KeyObjects) {}

  publicKey(ref: MaterialRef, spec: KeySpec): Promise<Buffer> {
    const toSpki = KEY_KINDS.get(spec)?.publicKeyInfo;
    if (!toSpki) return Promise.reject(new KmsError('KMS.0331', { detail: `${spec} keys have no public key.` }));
    return this.keys.withObject(ref, 'public', 'read public key', (session, key) => toSpki(session, key));
  }
}
