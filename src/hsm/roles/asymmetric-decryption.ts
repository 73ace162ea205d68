import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import { KmsError } from '../../errors';
import { ckrOf } from '../ckr';
import type { AsymmetricDecryption, AsymmetricEncryptionAlgorithm, HsmCapabilities, MaterialRef } from '../hsm';
import { destroyQuietly } from '../key-kinds/generate';
import type { KeyObjects } from '../key-objects';
import type { Pkcs11Profile } from '../profiles';
import { decryptOn } from './calls';

/** CKZ_DATA_SPECIFIED: OAEP's label is the (empty) data given; pkcs11js does not name it. */
const CKZ_DATA_SPECIFIED = 1;

/** OAEP with MGF1 of the same hash and an empty label, as every KMS (and Node's default) has it. */
export const OAEP: Readonly<Record<AsymmetricEncryptionAlgorithm, pkcs11.RsaOAEP>> = {
  RSAES_OAEP_SHA_256: { type: pkcs11.CK_PARAMS_RSA_OAEP, hashAlg: pkcs11.CKM_SHA256, mgf: pkcs11.CKG_MGF1_SHA256, source: CKZ_DATA_SPECIFIED },
  RSAES_OAEP_SHA_1: { type: pkcs11.CK_PARAMS_RSA_OAEP, hashAlg: pkcs11.CKM_SHA_1, mgf: pkcs11.CKG_MGF1_SHA1, source: CKZ_DATA_SPECIFIED },
};

/** RSA's largest modulus of ours (4096 bits), and so the most a decryption can give back. */
const MAX_PLAINTEXT_BYTES = 512;

/**
 * What C_Decrypt answers, besides the profile's bad-tag codes, for an RSA ciphertext that cannot
 * decrypt: CKR_DATA_LEN_RANGE, and CKR_ARGUMENTS_BAD, NSS 3.87's answer to a block whose number is
 * not below the modulus (all 0xff bytes, or, now and then, a ciphertext made for another key).
 * The OAEP parameters are fixed and were probed at start-up (probeOaep), so from this call the
 * argument it means is the ciphertext.
 */
const BAD_CIPHERTEXT: ReadonlySet<number> = new Set([pkcs11.CKR_DATA_LEN_RANGE, pkcs11.CKR_ARGUMENTS_BAD]);

/**
 * The {@link AsymmetricDecryption} role: RSA-OAEP with the private key in the token. What C_Decrypt
 * answers for a ciphertext that does not decrypt is the profile's (SoftHSM's CKR_GENERAL_ERROR, as
 * for a GCM tag) or one of BAD_CIPHERTEXT, and from that call only it is the caller's KMS.0311.
 */
export class Pkcs11AsymmetricDecryption implements AsymmetricDecryption {
  constructor(
    private readonly keys: KeyObjects,
    private readonly profile: Pkcs11Profile,
    private readonly capabilities: () => HsmCapabilities,
  ) {}

  decrypt(ref: MaterialRef, algorithm: AsymmetricEncryptionAlgorithm, ciphertext: Buffer): Promise<Buffer> {
    if (!this.capabilities().algorithms.has(algorithm)) return Promise.reject(new KmsError('KMS.0308', { detail: `${algorithm} is not supported by this HSM.` }));
    if (ciphertext.length === 0 || ciphertext.length > MAX_PLAINTEXT_BYTES) return Promise.reject(new KmsError('KMS.0311'));
    const mechanism = { mechanism: pkcs11.CKM_RSA_PKCS_OAEP, parameter: OAEP[algorithm] };
    return this.keys.withObject(ref, 'private', 'rsa decrypt', async (session, key) => {
      try {
        return Buffer.from(await decryptOn(session, mechanism, key, ciphertext, MAX_PLAINTEXT_BYTES, this.profile.cryptoCalls));
      } catch (error) {
        const code = ckrOf(error);
        throw code !== undefined && (this.profile.badTagCodes.has(code) || BAD_CIPHERTEXT.has(code)) ? new KmsError('KMS.0311', { cause: error }) : error;
      }
    });
  }
}

/**
 * Any odd 2048-bit modulus will do for {@link probeOaep}: nothing is decrypted, and the one byte
 * encrypted is thrown away.
 */
const PROBE_MODULUS = Buffer.alloc(256, 0xff);

/**
 * Whether the module takes OAEP with `algorithm`'s hash, which its mechanism list cannot say
 * (SoftHSM 2.6 offers CKM_RSA_PKCS_OAEP and answers CKR_ARGUMENTS_BAD to any hash but SHA-1): one
 * byte encrypted with a session public key object made for the probe (C_EncryptInit checks the
 * parameters; C_Encrypt ends the operation, so that the session goes back to the pool idle).
 * Throws what is not an answer about the parameters.
 */
export function probeOaep(session: graphene.Session, algorithm: AsymmetricEncryptionAlgorithm): boolean {
  const key = session.create({
    class: graphene.ObjectClass.PUBLIC_KEY,
    keyType: graphene.KeyType.RSA,
    token: false,
    encrypt: true,
    modulus: PROBE_MODULUS,
    publicExponent: Buffer.from([0x01, 0x00, 0x01]),
  });
  try {
    const { lib, handle } = session;
    try {
      lib.C_EncryptInit(handle, { mechanism: pkcs11.CKM_RSA_PKCS_OAEP, parameter: OAEP[algorithm] }, key.handle);
    } catch (error) {
      if (REFUSED_PARAMETERS.has(ckrOf(error) ?? -1)) return false;
      throw error;
    }
    lib.C_Encrypt(handle, Buffer.from([0]), Buffer.alloc(PROBE_MODULUS.length));
    return true;
  } finally {
    destroyQuietly(key);
  }
}

/** What modules answer to OAEP parameters they do not take. */
const REFUSED_PARAMETERS: ReadonlySet<number> = new Set([pkcs11.CKR_ARGUMENTS_BAD, pkcs11.CKR_MECHANISM_PARAM_INVALID, pkcs11.CKR_MECHANISM_INVALID]);
