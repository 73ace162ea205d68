import * as graphene from 'graphene-pk11';
import { KmsError } from '../../errors';
import { ckrName } from '../ckr';
import type { Pkcs11Profile } from '../profiles';
import { HsmStartError } from '../start-error';
import { decryptOn, encryptOn, IV_BYTES } from './aes-gcm';

/** What the self-test found that start-up may go on with, for the log. */
export interface SelfTestFindings {
  /** Set when a tag that does not verify is not answered with one of the profile's bad-tag codes. */
  readonly badTagAnswer?: string;
}

/**
 * Proves at start-up, on a throwaway session key, that the module does AES-256-GCM the way its
 * profile says: an encryption and its decryption with the configured IV source (a FIPS-mode HSM
 * that refuses a caller's IV stops the start with one line saying which setting to change, instead
 * of failing every request), and what a tampered tag is answered with.
 */
export async function aesGcmSelfTest(session: graphene.Session, profile: Pkcs11Profile): Promise<SelfTestFindings> {
  const key = session.generateKey(graphene.KeyGenMechanism.AES, {
    keyType: graphene.KeyType.AES,
    valueLen: 32,
    token: false,
    private: true,
    sensitive: true,
    extractable: false,
    encrypt: true,
    decrypt: true,
  });
  try {
    const plaintext = session.generateRandom(32);
    const aad = Buffer.from('kms self-test');
    const callerIv = profile.gcmIv === 'caller' ? session.generateRandom(IV_BYTES) : undefined;
    let sealed;
    try {
      sealed = await encryptOn(session, key, profile, plaintext, aad, callerIv);
    } catch (error) {
      throw new HsmStartError(
        `AES-GCM encryption fails with KMS_PKCS11_GCM_IV=${profile.gcmIv}: ${reason(error)}` +
          ' (a FIPS-mode HSM makes its own IVs: try token-params or token-output)',
        { cause: error },
      );
    }
    let opened: Buffer;
    try {
      opened = await decryptOn(session, key, profile, sealed, aad);
    } catch (error) {
      throw new HsmStartError(`AES-GCM decryption of the self-test's own ciphertext fails: ${reason(error)}`, { cause: error });
    }
    if (!opened.equals(plaintext)) throw new HsmStartError('AES-GCM decryption of the self-test does not give back its plaintext');
    const tampered = Buffer.from(sealed.ciphertext);
    tampered[tampered.length - 1]! ^= 1;
    try {
      await decryptOn(session, key, profile, { iv: sealed.iv, ciphertext: tampered }, aad);
      throw new HsmStartError('AES-GCM decryption accepts a tampered tag');
    } catch (error) {
      if (error instanceof HsmStartError) throw error;
      if (error instanceof KmsError && error.code === 'KMS.2201') return {};
      return { badTagAnswer: ckrName(error) };
    }
  } finally {
    try {
      key.destroy();
    } catch {
      // A session object: it goes with the session anyway.
    }
  }
}

function reason(error: unknown): string {
  return error instanceof KmsError ? `${error.code} (${ckrName(error.cause)})` : ckrName(error);
}
