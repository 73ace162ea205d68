import { createHash } from 'node:crypto';
import type * as pkcs11 from 'pkcs11js';
import { KmsError } from '../../errors';
import type { HsmCapabilities, KeySpec, MaterialRef, SignatureInput, Signing } from '../hsm';
import { kindOf } from '../key-kinds';
import type { KeyObjects } from '../key-objects';
import type { Pkcs11Profile } from '../profiles';
import { signOn, verifyOn } from './calls';
import { ecdsaFromDer, ecdsaToDer } from './ecdsa-der';
import { SIGNATURE_ALGORITHMS, type SignatureFamily } from './signature-algorithms';

/** The signature family of a spec's keys (its kind's), or undefined for a spec that does not sign. */
export function familyOf(spec: KeySpec): SignatureFamily | undefined {
  const family = kindOf(spec).family.name;
  return family === 'RSA' || family === 'EC' || family === 'EDWARDS' ? family : undefined;
}

/** What the token is given: the mechanism (with its parameter) and the data it signs. */
interface Prepared {
  readonly mechanism: pkcs11.Mechanism;
  readonly data: Buffer;
}

/**
 * The {@link Signing} role for every signing kind (RSA, EC, Ed25519): the private key signs, the
 * public key verifies, both in the token. Where the module lacks an algorithm's combined
 * mechanism, the service hashes a RAW message and the token signs the digest.
 */
export class Pkcs11Signing implements Signing {
  constructor(
    private readonly keys: KeyObjects,
    private readonly profile: Pkcs11Profile,
    private readonly capabilities: () => HsmCapabilities,
  ) {}

  sign(ref: MaterialRef, input: SignatureInput): Promise<Buffer> {
    let prepared: Prepared;
    try {
      prepared = this.prepare(input);
    } catch (error) {
      return Promise.reject(error);
    }
    const signed = this.keys.withObject(ref, 'private', 'sign', (session, key) => signOn(session, prepared.mechanism, key, prepared.data, this.profile.cryptoCalls));
    return SIGNATURE_ALGORITHMS[input.algorithm].family === 'EC' ? signed.then((raw) => ecdsaToDer(raw)) : signed.then((signature) => Buffer.from(signature));
  }

  verify(ref: MaterialRef, input: SignatureInput, signature: Buffer): Promise<boolean> {
    let prepared: Prepared;
    let presented = signature;
    try {
      prepared = this.prepare(input);
      const family = kindOf(input.spec).family;
      if (SIGNATURE_ALGORITHMS[input.algorithm].family === 'EC' && family.name === 'EC') {
        const raw = ecdsaFromDer(signature, family.curve.bytes);
        if (!raw) return Promise.resolve(false);
        presented = raw;
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.keys.withObject(ref, 'public', 'verify', (session, key) => verifyOn(session, prepared.mechanism, key, prepared.data, presented, this.profile.cryptoCalls));
  }

  /** The mechanism and the data for `input`, or the caller's error (KMS.0332, KMS.0329, KMS.0308). */
  private prepare(input: SignatureInput): Prepared {
    const algorithm = SIGNATURE_ALGORITHMS[input.algorithm];
    if (familyOf(input.spec) !== algorithm.family) throw new KmsError('KMS.0332', { detail: `${input.algorithm} does not sign with ${input.spec} keys.` });
    const parameter = algorithm.parameter ? { parameter: algorithm.parameter } : {};
    if (!algorithm.hash) {
      if (input.messageType !== 'RAW') throw new KmsError('KMS.0308', { detail: `${input.algorithm} signs the message itself: message_type must be RAW.` });
      // Pure EdDSA is single-part in PKCS#11 (no C_SignFinal alone), and pkcs11js hands C_Sign an empty buffer as a NULL pointer.
      if (input.message.length === 0) throw new KmsError('KMS.0308', { detail: `${input.algorithm} signs a message of at least one byte.` });
      return { mechanism: { mechanism: algorithm.direct.type }, data: input.message };
    }
    if (input.messageType === 'DIGEST' && input.message.length !== algorithm.hash.bytes) throw new KmsError('KMS.0329');
    if (input.messageType === 'RAW' && algorithm.combined && !this.capabilities().hashedInService.has(input.algorithm)) {
      return { mechanism: { mechanism: algorithm.combined.type, ...parameter }, data: input.message };
    }
    const digest = input.messageType === 'DIGEST' ? input.message : createHash(algorithm.hash.name).update(input.message).digest();
    return { mechanism: { mechanism: algorithm.direct.type, ...parameter }, data: algorithm.digestInput ? algorithm.digestInput(digest) : digest };
  }
}
