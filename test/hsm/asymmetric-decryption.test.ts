/**
 * The asymmetric decryption role on a real token: RSA-OAEP ciphertexts made by Node's crypto with
 * the public key the key pairs role exported decrypt in the token, for every RSA spec; a
 * ciphertext that does not decrypt is the caller's KMS.0311; the private key may decrypt and
 * nothing else.
 */
import { constants, createPublicKey, publicEncrypt, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import * as pkcs11 from 'pkcs11js';
import type { AsymmetricEncryptionAlgorithm, Hsm, KeySpec, MaterialRef } from '../../src/hsm/hsm';
import { PROTECTED, readFlags, readSecretPart } from '../helpers/key-attributes';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';
import { testModuleKind } from '../helpers/test-module';

const t = useTestService();
let hsm: Hsm;
let side: SideChannel;

beforeAll(() => {
  hsm = t.service.hsm;
  side = new SideChannel(t.config.hsm);
});

const OAEP_HASH: Readonly<Record<AsymmetricEncryptionAlgorithm, { readonly name: string; readonly bytes: number }>> = {
  RSAES_OAEP_SHA_256: { name: 'sha256', bytes: 32 },
  RSAES_OAEP_SHA_1: { name: 'sha1', bytes: 20 },
};

const ALGORITHMS: readonly AsymmetricEncryptionAlgorithm[] = ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'];

/** The OAEP hashes the modules do not take: SoftHSM 2.6 (also under the FIPS-style shim) takes SHA-1 only, and answers CKR_ARGUMENTS_BAD to SHA-256. */
const LACKING: Readonly<Record<ReturnType<typeof testModuleKind>, readonly AsymmetricEncryptionAlgorithm[]>> = {
  softhsm: ['RSAES_OAEP_SHA_256'],
  fips: ['RSAES_OAEP_SHA_256'],
  nss: [],
};

const lacking = (algorithm: AsymmetricEncryptionAlgorithm): boolean => LACKING[testModuleKind()].includes(algorithm);

/** An algorithm the module can do, for the tests of what does not decrypt. */
const usable = (): AsymmetricEncryptionAlgorithm => ALGORITHMS.find((algorithm) => !lacking(algorithm))!;

describe('what the module can decrypt with', () => {
  it.each(ALGORITHMS)('%s: supported unless this module lacks it; then listed, and refused before the token is asked (KMS.0308)', async (algorithm) => {
    expect(hsm.supportsAlgorithm(algorithm)).toBe(!lacking(algorithm));
    expect(hsm.supports('RSA_2048', 'ENCRYPT_DECRYPT')).toBe(true);
    if (lacking(algorithm)) {
      expect(hsm.capabilities.missing).toContain(`${algorithm}: the module refuses OAEP with its hash`);
      const { ref, publicKey } = await newKey('RSA_2048');
      const ciphertext = encryptWithNode(publicKey, algorithm, Buffer.from('x'));
      await expect(hsm.asymmetricDecryption.decrypt(ref, algorithm, ciphertext)).rejects.toMatchObject({ code: 'KMS.0308' });
    }
  });
});

function encryptWithNode(publicKey: KeyObject, algorithm: AsymmetricEncryptionAlgorithm, plaintext: Buffer): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm].name }, plaintext);
}

async function newKey(spec: KeySpec): Promise<{ ref: MaterialRef; publicKey: KeyObject }> {
  const ref = { keyId: randomUUID(), version: 0 };
  await hsm.generateKey(ref, spec, { fresh: true, usage: 'ENCRYPT_DECRYPT' });
  return { ref, publicKey: createPublicKey({ key: await hsm.keyPairs.publicKey(ref, spec), format: 'der', type: 'spki' }) };
}

describe.each([
  ['RSA_2048', 2048],
  ['RSA_3072', 3072],
  ['RSA_4096', 4096],
] as const)('%s for ENCRYPT_DECRYPT', (spec, bits) => {
  let key: { ref: MaterialRef; publicKey: KeyObject };

  beforeAll(async () => {
    expect(hsm.supports(spec, 'ENCRYPT_DECRYPT')).toBe(true);
    key = await newKey(spec);
  }, 60_000);

  it.each(ALGORITHMS)('%s: what Node encrypts with the exported public key, the token decrypts (up to the longest plaintext)', async (algorithm) => {
    if (lacking(algorithm)) return;
    expect(key.publicKey.asymmetricKeyDetails?.modulusLength).toBe(bits);
    // OAEP's limit: the modulus less two hashes and two bytes (190 bytes for RSA-2048 with SHA-256).
    const longest = bits / 8 - 2 * OAEP_HASH[algorithm].bytes - 2;
    for (const length of [1, 32, longest]) {
      const plaintext = randomBytes(length);
      const ciphertext = encryptWithNode(key.publicKey, algorithm, plaintext);
      expect((await hsm.asymmetricDecryption.decrypt(key.ref, algorithm, ciphertext)).equals(plaintext)).toBe(true);
    }
    expect(() => encryptWithNode(key.publicKey, algorithm, randomBytes(longest + 1))).toThrow();
  });

  it('refuses a ciphertext that does not decrypt under the key (KMS.0311): another hash, another key, a changed byte, the wrong length', async () => {
    const algorithm = usable();
    const plaintext = Buffer.from('secret');
    const otherHash = encryptWithNode(key.publicKey, algorithm === 'RSAES_OAEP_SHA_1' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1', plaintext);
    await expect(hsm.asymmetricDecryption.decrypt(key.ref, algorithm, otherHash)).rejects.toMatchObject({ code: 'KMS.0311' });
    const changed = encryptWithNode(key.publicKey, algorithm, plaintext);
    changed[changed.length - 1]! ^= 0x01;
    await expect(hsm.asymmetricDecryption.decrypt(key.ref, algorithm, changed)).rejects.toMatchObject({ code: 'KMS.0311' });
    await expect(hsm.asymmetricDecryption.decrypt(key.ref, algorithm, changed.subarray(1))).rejects.toMatchObject({ code: 'KMS.0311' });
    await expect(hsm.asymmetricDecryption.decrypt(key.ref, algorithm, Buffer.alloc(0))).rejects.toMatchObject({ code: 'KMS.0311' });
    // The session that failed is healthy: the next decryption works.
    expect((await hsm.asymmetricDecryption.decrypt(key.ref, algorithm, encryptWithNode(key.publicKey, algorithm, plaintext))).equals(plaintext)).toBe(true);
  });
});

describe('an RSA key pair for ENCRYPT_DECRYPT in the token', () => {
  it('has a private key that is sensitive, never extractable and decrypts only, and a public key that encrypts only', async () => {
    const { ref } = await newKey('RSA_2048');
    const label = `kms/${ref.keyId}/v0`;
    expect(readFlags(side, ref, 'private')).toEqual({
      label,
      token: true,
      private: true,
      modifiable: false,
      uses: { decrypt: true, sign: false, unwrap: false, derive: false },
      protection: PROTECTED,
    });
    expect(readFlags(side, ref, 'public')).toEqual({ label, token: true, private: false, modifiable: false, uses: { encrypt: true, verify: false, wrap: false, derive: false } });
    expect(readSecretPart(side, ref, 'private', pkcs11.CKA_PRIVATE_EXPONENT)).toBe(pkcs11.CKR_ATTRIBUTE_SENSITIVE);
  });

  it('cannot sign, and a signing key cannot decrypt: the token itself refuses what the usage did not allow (the service checks key_usage first: reaching the token so is a defect, KMS.0103)', async () => {
    const algorithm = usable();
    const decrypting = await newKey('RSA_2048');
    // SoftHSM answers CKR_KEY_FUNCTION_NOT_PERMITTED; NSS's softoken answers otherwise.
    const refusedByToken = expect.objectContaining({ code: 'KMS.0103', cause: expect.any(pkcs11.Pkcs11Error) });
    await expect(
      hsm.signing.sign(decrypting.ref, { spec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256', messageType: 'DIGEST', message: Buffer.alloc(32) }),
    ).rejects.toEqual(refusedByToken);
    const signing = { keyId: randomUUID(), version: 0 };
    await hsm.generateKey(signing, 'RSA_2048', { fresh: true, usage: 'SIGN_VERIFY' });
    const publicKey = createPublicKey({ key: await hsm.keyPairs.publicKey(signing, 'RSA_2048'), format: 'der', type: 'spki' });
    const ciphertext = encryptWithNode(publicKey, algorithm, Buffer.from('x'));
    await expect(hsm.asymmetricDecryption.decrypt(signing, algorithm, ciphertext)).rejects.toEqual(refusedByToken);
  });
});
