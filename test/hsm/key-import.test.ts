/**
 * The key import role on a real token: a wrapping key pair made in the token (its private key may
 * unwrap and nothing else, never leaves it), material wrapped by Node's crypto with its public key
 * unwrapped straight into an AES-256 token object that the symmetric role uses unchanged and that
 * reads back sensitive and never extractable; material of the wrong length, wrapped with another
 * hash or under another wrapping key, or other than the fingerprint expects, is refused and leaves
 * nothing in the token.
 */
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import * as pkcs11 from 'pkcs11js';
import type { Hsm, KeyImport, MaterialRef, WrappingAlgorithm } from '../../src/hsm/hsm';
import { WRAPPING_KEY_VERSION } from '../../src/hsm/hsm';
import { PROTECTED, readFlags, readSecretPart } from '../helpers/key-attributes';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';
import { testModuleKind } from '../helpers/test-module';

const t = useTestService();
let hsm: Hsm;
let role: KeyImport;
let side: SideChannel;

beforeAll(() => {
  hsm = t.service.hsm;
  side = new SideChannel(t.config.hsm);
  role = hsm.keyImport!;
});

const HASH: Readonly<Record<WrappingAlgorithm, string>> = { RSAES_OAEP_SHA_256: 'sha256', RSAES_OAEP_SHA_1: 'sha1' };

/** SoftHSM 2.6 (also under the FIPS-style shim) unwraps OAEP with SHA-1 only, as it decrypts; NSS's softoken takes both. */
const EXPECTED: Readonly<Record<ReturnType<typeof testModuleKind>, readonly WrappingAlgorithm[]>> = {
  softhsm: ['RSAES_OAEP_SHA_1'],
  fips: ['RSAES_OAEP_SHA_1'],
  nss: ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'],
};

const usable = (): WrappingAlgorithm => EXPECTED[testModuleKind()][0]!;

function wrap(publicKey: KeyObject, algorithm: WrappingAlgorithm, material: Buffer): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: HASH[algorithm] }, material);
}

async function wrappingKey(keyId: string): Promise<KeyObject> {
  return createPublicKey({ key: await role.createWrappingKey(keyId), format: 'der', type: 'spki' });
}

/** The key check value Node computes: AES-256-ECB of a zero block. */
function checkValue(material: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-ecb', material, null).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.alloc(16)), cipher.final()]);
}

describe('what the module can import with', () => {
  it('probes the OAEP hashes C_UnwrapKey takes', () => {
    expect([...hsm.capabilities.wrappingAlgorithms].sort()).toEqual([...EXPECTED[testModuleKind()]].sort());
    expect([...role.wrappingAlgorithms].sort()).toEqual([...EXPECTED[testModuleKind()]].sort());
  });

  it('probes the key pair specs whose private keys it imports: RSA and EC on SoftHSM (and the shim over it); RSA only on NSS\'s softoken, which cannot take an EC private key without its public value in a vendor attribute', () => {
    const rsa = ['RSA_2048', 'RSA_3072', 'RSA_4096'];
    const expected = testModuleKind() === 'nss' ? rsa : [...rsa, 'EC_P256', 'EC_P384', 'SECP256K1'];
    expect([...hsm.capabilities.privateKeySpecs].sort()).toEqual(expected.sort());
    expect([...role.privateKeySpecs].sort()).toEqual(expected.sort());
  });
});

describe('a wrapping key pair', () => {
  it('is RSA-2048, in the token under the key id and the wrapping version; its private key unwraps only and is sensitive, never extractable', async () => {
    const keyId = randomUUID();
    const publicKey = await wrappingKey(keyId);
    expect(publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    const ref = { keyId, version: WRAPPING_KEY_VERSION };
    const label = `kms/${keyId}/v${WRAPPING_KEY_VERSION}`;
    expect(readFlags(side, ref, 'private')).toEqual({
      label,
      token: true,
      private: true,
      modifiable: false,
      uses: { decrypt: false, sign: false, unwrap: true, derive: false },
      protection: PROTECTED,
    });
    expect(readSecretPart(side, ref, 'private', pkcs11.CKA_PRIVATE_EXPONENT)).toBe(pkcs11.CKR_ATTRIBUTE_SENSITIVE);
    expect((await role.wrappingPublicKey(keyId)).equals(publicKey.export({ format: 'der', type: 'spki' }))).toBe(true);
  });

  it('is replaced by a new one for the same key (one per key), and destroyed on request', async () => {
    const keyId = randomUUID();
    const first = await wrappingKey(keyId);
    const second = await wrappingKey(keyId);
    expect(first.export({ format: 'der', type: 'spki' }).equals(second.export({ format: 'der', type: 'spki' }))).toBe(false);
    expect(hsm.listKeys().filter((ref) => ref.keyId === keyId)).toEqual([{ keyId, version: WRAPPING_KEY_VERSION }]);
    // Material wrapped for the replaced key no longer unwraps.
    const ref = { keyId, version: 0 };
    await expect(role.unwrapKey(ref, 'AES_256', keyId, usable(), wrap(first, usable(), randomBytes(32)))).rejects.toMatchObject({ code: 'KMS.0308' });
    expect(await role.destroyWrappingKey(keyId)).toBe(true);
    expect(await role.destroyWrappingKey(keyId)).toBe(false);
    await expect(role.unwrapKey(ref, 'AES_256', keyId, usable(), wrap(second, usable(), randomBytes(32)))).rejects.toMatchObject({ code: 'KMS.0207' });
  });
});

describe('unwrapping', () => {
  it.each(['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'] as const)('%s: into an AES-256 token object the symmetric role uses, sensitive and never extractable; the fingerprint is the key check value', async (algorithm) => {
    const keyId = randomUUID();
    const publicKey = await wrappingKey(keyId);
    const ref: MaterialRef = { keyId, version: 0 };
    const material = randomBytes(32);
    if (!EXPECTED[testModuleKind()].includes(algorithm)) {
      await expect(role.unwrapKey(ref, 'AES_256', keyId, algorithm, wrap(publicKey, algorithm, material))).rejects.toMatchObject({ code: 'KMS.0308' });
      return;
    }
    const fingerprint = await role.unwrapKey(ref, 'AES_256', keyId, algorithm, wrap(publicKey, algorithm, material));
    expect(fingerprint.equals(checkValue(material))).toBe(true);
    // AES-GCM under it, checked with Node's crypto and the material.
    const aad = Buffer.from('aad');
    const sealed = await hsm.symmetric.encrypt(ref, Buffer.from('hello'), aad);
    expect((await hsm.symmetric.decrypt(ref, sealed, aad)).toString()).toBe('hello');
    expect(readFlags(side, ref, 'secret')).toEqual({
      label: `kms/${keyId}/v0`,
      token: true,
      private: true,
      // SoftHSM 2.6 refuses CKA_MODIFIABLE false in an unwrap template (the role's comment).
      modifiable: testModuleKind() !== 'nss',
      uses: { encrypt: true, decrypt: true, wrap: false, unwrap: false, sign: false, verify: false, derive: false },
      // Unwrapped, its value came from outside: PKCS#11 has CKA_ALWAYS_SENSITIVE and
      // CKA_NEVER_EXTRACTABLE false for such a key; sensitive and not extractable is what it can be.
      protection: expect.objectContaining({ sensitive: true, extractable: false }),
    });
    expect(readSecretPart(side, ref, 'secret', pkcs11.CKA_VALUE)).toBe(pkcs11.CKR_ATTRIBUTE_SENSITIVE);
    // The session object the material was checked on is gone: the token holds the key's object and its wrapping pair only.
    expect(hsm.listKeys().filter((other) => other.keyId === keyId).length).toBe(2);
  });

  it('refuses material of another length (KMS.2604), another hash (KMS.0308), or other than expected (KMS.2606), writing nothing', async () => {
    const algorithm = usable();
    const keyId = randomUUID();
    const publicKey = await wrappingKey(keyId);
    const ref: MaterialRef = { keyId, version: 0 };
    for (const length of [16, 31, 33]) {
      await expect(role.unwrapKey(ref, 'AES_256', keyId, algorithm, wrap(publicKey, algorithm, randomBytes(length)))).rejects.toMatchObject({ code: 'KMS.2604' });
    }
    const other: WrappingAlgorithm = algorithm === 'RSAES_OAEP_SHA_1' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
    await expect(role.unwrapKey(ref, 'AES_256', keyId, algorithm, wrap(publicKey, other, randomBytes(32)))).rejects.toMatchObject({ code: 'KMS.0308' });
    const changed = wrap(publicKey, algorithm, randomBytes(32));
    changed[10]! ^= 0x01;
    await expect(role.unwrapKey(ref, 'AES_256', keyId, algorithm, changed)).rejects.toMatchObject({ code: 'KMS.0308' });
    const material = randomBytes(32);
    await expect(role.unwrapKey(ref, 'AES_256', keyId, algorithm, wrap(publicKey, algorithm, material), checkValue(randomBytes(32)))).rejects.toMatchObject({ code: 'KMS.2606' });
    expect(await hsm.hasKey(ref)).toBe(false);
    // The same material as expected goes in.
    expect((await role.unwrapKey(ref, 'AES_256', keyId, algorithm, wrap(publicKey, algorithm, material), checkValue(material))).equals(checkValue(material))).toBe(true);
    expect(await hsm.hasKey(ref)).toBe(true);
  });

  it('replaces what an interrupted import left for the key', async () => {
    const algorithm = usable();
    const keyId = randomUUID();
    const publicKey = await wrappingKey(keyId);
    const ref: MaterialRef = { keyId, version: 0 };
    await role.unwrapKey(ref, 'AES_256', keyId, algorithm, wrap(publicKey, algorithm, randomBytes(32)));
    const material = randomBytes(32);
    await role.unwrapKey(ref, 'AES_256', keyId, algorithm, wrap(publicKey, algorithm, material));
    const sealed = await hsm.symmetric.encrypt(ref, Buffer.from('x'), Buffer.alloc(0));
    const decipher = (await import('node:crypto')).createDecipheriv('aes-256-gcm', material, sealed.iv);
    decipher.setAuthTag(sealed.ciphertext.subarray(-16));
    expect(Buffer.concat([decipher.update(sealed.ciphertext.subarray(0, -16)), decipher.final()]).toString()).toBe('x');
  });
});
