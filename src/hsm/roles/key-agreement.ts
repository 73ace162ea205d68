import { createPublicKey, type KeyObject } from 'node:crypto';
import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import { KmsError } from '../../errors';
import type { KeyAgreement, KeySpec, MaterialRef } from '../hsm';
import { kindOf } from '../key-kinds';
import { destroyQuietly } from '../key-kinds/generate';
import { readAttributes } from '../key-kinds/public-key-info';
import type { Curve } from '../key-kinds/key-kind';
import type { KeyObjects } from '../key-objects';
import type { Pkcs11Profile } from '../profiles';
import { callback } from './calls';

/**
 * The {@link KeyAgreement} role: ECDH (CKM_ECDH1_DERIVE, no KDF) with the private key in the token.
 * The peer's key is parsed by Node's crypto (which refuses a point that is not on its curve) and
 * handed to the token as an uncompressed point. The key's CKA_DERIVE is read first: not every module
 * enforces it. The shared secret is a session object the token
 * lets us read, read once and destroyed: returning it is the operation's purpose.
 */
export class Pkcs11KeyAgreement implements KeyAgreement {
  constructor(
    private readonly keys: KeyObjects,
    private readonly profile: Pkcs11Profile,
  ) {}

  deriveSharedSecret(ref: MaterialRef, spec: KeySpec, peerPublicKey: Buffer): Promise<Buffer> {
    const family = kindOf(spec).family;
    if (family.name !== 'EC') return Promise.reject(new KmsError('KMS.0308', { detail: `${spec} keys do not agree keys.` }));
    const { curve } = family;
    let point: Buffer;
    try {
      point = peerPoint(peerPublicKey, curve);
    } catch (error) {
      return Promise.reject(error);
    }
    const parameter: pkcs11.ECDH1 = { type: pkcs11.CK_PARAMS_EC_DH, kdf: pkcs11.CKD_NULL, publicData: point };
    const mechanism: pkcs11.Mechanism = { mechanism: pkcs11.CKM_ECDH1_DERIVE, parameter };
    const template = graphene.Template.toPkcs11({
      class: graphene.ObjectClass.SECRET_KEY,
      keyType: graphene.KeyType.GENERIC_SECRET,
      valueLen: curve.bytes,
      token: false,
      sensitive: false,
      extractable: true,
    });
    return this.keys.withObject(ref, 'private', 'derive', async (session, key) => {
      // NSS's softoken derives with a key whose CKA_DERIVE is false: the role does not rely on the
      // module to hold a signing key to its usage (the service checks key_usage before; reaching
      // here so is a defect, as the module's own refusal is elsewhere).
      const [allowed] = readAttributes(session, key, [pkcs11.CKA_DERIVE]);
      if (allowed?.[0] !== 1) throw new KmsError('KMS.0103', { cause: new Error('the private key may not derive (CKA_DERIVE is false)') });
      const { lib, handle } = session;
      const derived = this.profile.cryptoCalls === 'sync' ? lib.C_DeriveKey(handle, mechanism, key, template) : await callback<Buffer>((done) => lib.C_DeriveKey(handle, mechanism, key, template, done));
      const secret = new graphene.SessionObject(derived, session, lib);
      try {
        return Buffer.from(readAttributes(session, derived, [pkcs11.CKA_VALUE])[0]!);
      } finally {
        destroyQuietly(secret);
      }
    });
  }
}

/** The uncompressed point of a peer's DER SubjectPublicKeyInfo on `curve`, or KMS.0308. */
function peerPoint(spki: Buffer, curve: Curve): Buffer {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (error) {
    throw new KmsError('KMS.0308', { detail: 'The public key is not a valid DER SubjectPublicKeyInfo of a point on its curve.', cause: error });
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== curve.node) {
    throw new KmsError('KMS.0308', { detail: `The public key is not on the key's curve (${curve.jwk}).` });
  }
  const jwk = key.export({ format: 'jwk' });
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new KmsError('KMS.0308', { detail: 'The public key has no coordinates.' });
  return Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
}
