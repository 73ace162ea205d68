import * as pkcs11 from 'pkcs11js';
import { KmsError } from '../../errors';
import { ckrOf } from '../ckr';
import type { AsymmetricDecryption, AsymmetricEncryptionAlgorithm, MaterialRef } from '../hsm';
import type { KeyObjects } from '../key-objects';
import type { Pkcs11Profile } from '../profiles';
import { decryptOn } from './calls';

/** CKZ_DATA_SPECIFIED: OAEP's label is the (empty) data given; pkcs11js does not name it. */
const CKZ_DATA_SPECIFIED = 1;

/** OAEP with MGF1 of the same hash and an empty label, as every KMS (and Node's default) has it. */
const OAEP: Readonly<Record<AsymmetricEncryptionAlgorithm, pkcs11.RsaOAEP>> = {
  RSAES_OAEP_SHA_256: { type: pkcs11.CK_PARAMS_RSA_OAEP, hashAlg: pkcs11.CKM_SHA256, mgf: pkcs11.CKG_MGF1_SHA256, source: CKZ_DATA_SPECIFIED },
  RSAES_OAEP_SHA_1: { type: pkcs11.CK_PARAMS_RSA_OAEP, hashAlg: pkcs11.CKM_SHA_1, mgf: pkcs11.CKG_MGF1_SHA1, source: CKZ_DATA_SPECIFIED },
};

/** RSA's largest modulus of ours (4096 bits), and so the most a decryption can give back. */
const MAX_PLAINTEXT_BYTES = 512;

/**
 * The {@link AsymmetricDecryption} role: RSA-OAEP with the private key in the token. What C_Decrypt
 * answers for a ciphertext that does not decrypt is the profile's (SoftHSM's CKR_GENERAL_ERROR, as
 * for a GCM tag), and from that call only it is the caller's KMS.0311.
 */
export class Pkcs11AsymmetricDecryption implements AsymmetricDecryption {
  constructor(
    private readonly keys: KeyObjects,
    private readonly profile: Pkcs11Profile,
  ) {}

  decrypt(ref: MaterialRef, algorithm: AsymmetricEncryptionAlgorithm, ciphertext: Buffer): Promise<Buffer> {
    if (ciphertext.length === 0 || ciphertext.length > MAX_PLAINTEXT_BYTES) return Promise.reject(new KmsError('KMS.0311'));
    const mechanism = { mechanism: pkcs11.CKM_RSA_PKCS_OAEP, parameter: OAEP[algorithm] };
    return this.keys.withObject(ref, 'private', 'rsa decrypt', async (session, key) => {
      try {
        return Buffer.from(await decryptOn(session, mechanism, key, ciphertext, MAX_PLAINTEXT_BYTES, this.profile.cryptoCalls));
      } catch (error) {
        const code = ckrOf(error);
        throw code !== undefined && (this.profile.badTagCodes.has(code) || code === pkcs11.CKR_DATA_LEN_RANGE) ? new KmsError('KMS.0311', { cause: error }) : error;
      }
    });
  }
}
