import type { KeyRecord } from '../domain/keys';
import { KmsError } from '../errors';
import { recordFamily } from './key-specs';

/**
 * What an operation needs its key to be, checked on the key's record before the HSM is asked:
 * - `seal`: AES_256 for ENCRYPT_DECRYPT (data keys, encrypt-data/decrypt-data with
 *   SYMMETRIC_DEFAULT, re-encrypt, rotation);
 * - `sign`: a key pair made for SIGN_VERIFY (sign, verify);
 * - `publicKey`: any key pair (get-publickey);
 * - `mac`: an HMAC key made for GENERATE_VERIFY_MAC (generate-mac, verify-mac);
 * - `data`: what encrypt-data and decrypt-data take, an AES_256 key (`seal`'s rules) or an RSA key
 *   pair made for ENCRYPT_DECRYPT (RSA-OAEP: {@link isRsaEncryptionKey});
 * - `agree`: an EC key pair made for KEY_AGREEMENT (derive-shared-secret).
 */
export type KeyPurpose = 'seal' | 'sign' | 'publicKey' | 'mac' | 'data' | 'agree';

/** The kinds' families, by what the rules below ask of them (the key's kind says, not its spec's name). */
function isSymmetric(record: KeyRecord): boolean {
  return recordFamily(record).name === 'AES';
}

function isHmac(record: KeyRecord): boolean {
  return recordFamily(record).name === 'HMAC';
}

function isRsa(record: KeyRecord): boolean {
  return recordFamily(record).name === 'RSA';
}

function isKeyPair(record: KeyRecord): boolean {
  return !isSymmetric(record) && !isHmac(record);
}

/** An RSA key pair made to encrypt and decrypt (RSA-OAEP), for encrypt-data and decrypt-data. */
export function isRsaEncryptionKey(record: KeyRecord): boolean {
  return isRsa(record) && record.keyUsage === 'ENCRYPT_DECRYPT';
}

/**
 * Refuses a key of the wrong spec or usage for `purpose` with the code Huawei KMS answers
 * (kms-error-codes.md): KMS.0325 an asymmetric key for a symmetric operation, KMS.0341 an HMAC
 * key, KMS.1115 / KMS.0331 a symmetric key to sign or for a public key, KMS.0334 a key pair made to
 * encrypt and decrypt (or agree keys) asked to sign, KMS.0308 a key not made for KEY_AGREEMENT
 * asked to agree keys; for a MAC, KMS.0331 an AES key and KMS.0325 a key pair (their "not
 * supported by this key" codes; Huawei lists none of its own for MACs). `data` keeps `seal`'s
 * answers for every key but an RSA key pair: one made for ENCRYPT_DECRYPT is served (RSA-OAEP),
 * and one made to sign is KMS.0335 ("The cmk is used to sign and verify"), the code Huawei has for
 * exactly that key, rather than KMS.0325's "try again using a symmetric key": an RSA key of the
 * other usage would do.
 */
export function checkPurpose(record: KeyRecord, purpose: KeyPurpose): void {
  const named = `key ${record.keyId} is ${record.keySpec} for ${record.keyUsage}`;
  if (purpose === 'mac') {
    const needed = `${named}; generate-mac and verify-mac need an HMAC key for GENERATE_VERIFY_MAC.`;
    if (isSymmetric(record)) throw new KmsError('KMS.0331', { detail: needed });
    if (!isHmac(record)) throw new KmsError('KMS.0325', { detail: needed });
    if (record.keyUsage !== 'GENERATE_VERIFY_MAC') throw new KmsError('KMS.0341', { detail: needed });
    return;
  }
  if (purpose === 'data') {
    if (isRsaEncryptionKey(record)) return;
    if (isRsa(record) && record.keyUsage === 'SIGN_VERIFY') {
      throw new KmsError('KMS.0335', { detail: `${named}; encrypt-data and decrypt-data need an AES_256 key, or an RSA key pair made for ENCRYPT_DECRYPT.` });
    }
    checkPurpose(record, 'seal');
    return;
  }
  if (isHmac(record) && purpose !== 'seal') throw new KmsError('KMS.0341', { detail: `${named}.` });
  switch (purpose) {
    case 'seal':
      if (isHmac(record)) throw new KmsError('KMS.0341', { detail: `${named}; this operation needs an AES_256 key for ENCRYPT_DECRYPT.` });
      if (isKeyPair(record)) throw new KmsError('KMS.0325', { detail: `${named}; this operation needs an AES_256 key for ENCRYPT_DECRYPT.` });
      return;
    case 'sign':
      if (isSymmetric(record)) throw new KmsError('KMS.1115', { detail: `${named}; sign and verify need a key pair for SIGN_VERIFY.` });
      if (record.keyUsage !== 'SIGN_VERIFY') throw new KmsError('KMS.0334', { detail: `${named}; sign and verify need a key pair for SIGN_VERIFY.` });
      return;
    case 'publicKey':
      if (isSymmetric(record)) throw new KmsError('KMS.0331', { detail: `${named}; only key pairs have a public key.` });
      return;
    case 'agree':
      if (isSymmetric(record)) throw new KmsError('KMS.0331', { detail: `${named}; derive-shared-secret needs an EC key pair for KEY_AGREEMENT.` });
      if (record.keyUsage !== 'KEY_AGREEMENT') throw new KmsError('KMS.0308', { detail: `${named}; derive-shared-secret needs an EC key pair for KEY_AGREEMENT.` });
      return;
  }
}

/**
 * Rotation adds material versions of the AES key sealing data: asymmetric keys cannot be rotated,
 * as in Huawei KMS (KMS.0324 for RSA, KMS.0325 for the others), nor HMAC keys here (KMS.0341),
 * nor keys of imported material (KMS.0312).
 */
export function checkRotatable(record: KeyRecord): void {
  // Imported material cannot be made anew in the HSM: Huawei KMS refuses to rotate external keys.
  if (record.origin === 'external') throw new KmsError('KMS.0312', { detail: `key ${record.keyId} has imported key material.` });
  if (isRsa(record)) throw new KmsError('KMS.0324', { detail: `key ${record.keyId} is ${record.keySpec}.` });
  checkPurpose(record, 'seal');
}
