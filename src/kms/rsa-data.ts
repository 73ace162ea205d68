import { constants, createPublicKey, publicEncrypt, type KeyObject } from 'node:crypto';
import { KmsError } from '../errors';
import type { AsymmetricEncryptionAlgorithm, Hsm } from '../hsm/hsm';
import type { KeyRecord } from '../domain/keys';
import { currentMaterial, recordFamily, recordSpec } from './key-specs';
import type { EncryptionAlgorithm } from './api-types';
import type { RequestContext } from './context';
import { strictBase64 } from './strict-base64';

/** OAEP's hash for each algorithm, as Node names it, and its length (the plaintext limit is k - 2·hLen - 2). */
const OAEP_HASH: Readonly<Record<AsymmetricEncryptionAlgorithm, { readonly node: string; readonly bytes: number }>> = {
  RSAES_OAEP_SHA_256: { node: 'sha256', bytes: 32 },
  RSAES_OAEP_SHA_1: { node: 'sha1', bytes: 20 },
};

/** The OAEP algorithm an encryption_algorithm (`field`) names, or KMS.2106 (SYMMETRIC_DEFAULT, also when left out, and SM2_ENCRYPT). */
export function oaepAlgorithm(algorithm: EncryptionAlgorithm | undefined, field = 'encryption_algorithm'): AsymmetricEncryptionAlgorithm {
  if (isOaep(algorithm)) return algorithm;
  throw new KmsError('KMS.2106', { detail: `An RSA key for ENCRYPT_DECRYPT takes ${field} RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1.` });
}

/** Whether an encryption_algorithm names RSA-OAEP. */
export function isOaep(algorithm: EncryptionAlgorithm | undefined): algorithm is AsymmetricEncryptionAlgorithm {
  return algorithm !== undefined && algorithm in OAEP_HASH;
}

/**
 * encrypt-data and decrypt-data with an RSA key pair made for ENCRYPT_DECRYPT: RSA-OAEP (MGF1 of
 * the same hash, empty label). Encryption needs only the public key, read from the token and used
 * by Node's crypto here; decryption is the token's (the private key never leaves it). The
 * ciphertext is the raw modulus-size block, as Huawei KMS answers it: it carries no key id, so
 * decrypt-data needs key_id. An algorithm the module cannot decrypt with (OAEP-SHA-256 on SoftHSM
 * 2.6) is refused for both, naming it: a ciphertext this service could never open is not made.
 * The audit record names the algorithm (ctx.actedOn), never the data.
 *
 * The public key is read from the token once per key record, not on every encryption: kept by the
 * record object itself (a WeakMap), so it lives exactly as long as the service holds that record
 * (the key cache's: at most KEY_CACHE_MAX_ENTRIES, each re-read within KEY_CACHE_MAX_AGE_MS or when
 * the store says the key changed, when a new record, and so a new read, replaces it). Nothing
 * else can name an entry, so nothing a client chooses grows it. Concurrent encryptions share one
 * read; a read that fails is forgotten.
 */
export class RsaDataCipher {
  private readonly publicKeys = new WeakMap<KeyRecord, Promise<KeyObject>>();

  constructor(private readonly hsm: Hsm) {}

  /**
   * RSA-OAEP of `plaintext` under the record's public key. KMS.2108 when it is longer than the
   * modulus and hash allow; `what` names it in the message (encrypt-data's plain_text as UTF-8).
   */
  async encrypt(ctx: RequestContext, record: KeyRecord, requested: EncryptionAlgorithm | undefined, plaintext: Buffer, what = 'plain_text as UTF-8'): Promise<Buffer> {
    const algorithm = this.usableAlgorithm(ctx, requested);
    const limit = modulusBytes(record) - 2 * OAEP_HASH[algorithm].bytes - 2;
    if (plaintext.length > limit) {
      throw new KmsError('KMS.2108', { detail: `${what} must be at most ${limit} bytes for ${record.keySpec} with ${algorithm}.` });
    }
    const key = await this.publicKey(record);
    return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm].node }, plaintext);
  }

  /** The record's public key, read from the token for the first encryption with this record. */
  private publicKey(record: KeyRecord): Promise<KeyObject> {
    const kept = this.publicKeys.get(record);
    if (kept !== undefined) return kept;
    const read = this.hsm.keyPairs.publicKey(currentMaterial(record), recordSpec(record)).then((der) => createPublicKey({ key: der, format: 'der', type: 'spki' }));
    this.publicKeys.set(record, read);
    read.catch(() => {
      if (this.publicKeys.get(record) === read) this.publicKeys.delete(record);
    });
    return read;
  }

  /** The plaintext (the caller wipes it); KMS.2201 for a ciphertext that is not one block of the modulus' size, KMS.0311 for one that does not decrypt. */
  decrypt(ctx: RequestContext, record: KeyRecord, requested: EncryptionAlgorithm | undefined, cipherText: string): Promise<Buffer> {
    const algorithm = this.usableAlgorithm(ctx, requested);
    const ciphertext = strictBase64(cipherText);
    const bytes = modulusBytes(record);
    if (ciphertext === undefined || ciphertext.length !== bytes) {
      throw new KmsError('KMS.2201', { detail: `cipher_text must be base64 of ${bytes} bytes for ${record.keySpec}.` });
    }
    return this.hsm.asymmetricDecryption.decrypt(currentMaterial(record), algorithm, ciphertext);
  }

  private usableAlgorithm(ctx: RequestContext, requested: EncryptionAlgorithm | undefined): AsymmetricEncryptionAlgorithm {
    const algorithm = this.offeredAlgorithm(requested, 'encryption_algorithm');
    ctx.actedOn.algorithm = algorithm;
    return algorithm;
  }

  /** The OAEP algorithm `requested` names, when this HSM decrypts with it; KMS.2106 naming `field` otherwise. */
  offeredAlgorithm(requested: EncryptionAlgorithm | undefined, field: string): AsymmetricEncryptionAlgorithm {
    const algorithm = oaepAlgorithm(requested, field);
    if (!this.hsm.supportsAlgorithm(algorithm)) {
      throw new KmsError('KMS.2106', { detail: `${field}: ${algorithm} is not supported by this service's HSM.` });
    }
    return algorithm;
  }
}


/** The modulus length in bytes of the record's RSA kind; a record checked as an RSA key that is not one is a defect here (KMS.0103). */
function modulusBytes(record: KeyRecord): number {
  const family = recordFamily(record);
  if (family.name !== 'RSA') throw new KmsError('KMS.0103', { cause: new Error(`key ${record.keyId} has spec ${record.keySpec}, which is not RSA`) });
  return family.bits / 8;
}
