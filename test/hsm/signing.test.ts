/**
 * The signing role on a real token: every algorithm of every signing spec the module can do signs
 * in the token, and each signature is checked by Node's crypto with the public key the key pairs
 * role exported (a round trip through the token alone would prove nothing: a module that signed
 * with the wrong padding would verify its own signatures). A spec the module cannot do is refused
 * at generation, and listed as missing.
 */
import { createHash, createPublicKey, randomUUID, verify as nodeVerify, constants, type KeyObject } from 'node:crypto';
import * as pkcs11 from 'pkcs11js';
import type { Hsm, KeySpec, MaterialRef, SigningAlgorithm } from '../../src/hsm/hsm';
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

const HASH_BYTES = { sha256: 32, sha384: 48, sha512: 64 } as const;
type Hash = keyof typeof HASH_BYTES;

/** How Node checks each algorithm's signature: its hash (none for EdDSA) and its padding options. */
const NODE: Readonly<Record<SigningAlgorithm, { readonly hash: Hash | null; readonly pss?: true }>> = {
  RSASSA_PSS_SHA_256: { hash: 'sha256', pss: true },
  RSASSA_PSS_SHA_384: { hash: 'sha384', pss: true },
  RSASSA_PSS_SHA_512: { hash: 'sha512', pss: true },
  RSASSA_PKCS1_V1_5_SHA_256: { hash: 'sha256' },
  RSASSA_PKCS1_V1_5_SHA_384: { hash: 'sha384' },
  RSASSA_PKCS1_V1_5_SHA_512: { hash: 'sha512' },
  ECDSA_SHA_256: { hash: 'sha256' },
  ECDSA_SHA_384: { hash: 'sha384' },
  ECDSA_SHA_512: { hash: 'sha512' },
  EDDSA: { hash: null },
};

const RSA: SigningAlgorithm[] = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
];
const ECDSA: SigningAlgorithm[] = ['ECDSA_SHA_256', 'ECDSA_SHA_384', 'ECDSA_SHA_512'];

/** Each signing spec, the algorithms it signs with, and what Node's KeyObject says of its public key. */
const SPECS: ReadonlyArray<{ spec: KeySpec; algorithms: SigningAlgorithm[]; type: string; details: Record<string, unknown> }> = [
  { spec: 'RSA_2048', algorithms: RSA, type: 'rsa', details: { modulusLength: 2048, publicExponent: 65537n } },
  { spec: 'RSA_3072', algorithms: RSA, type: 'rsa', details: { modulusLength: 3072 } },
  { spec: 'RSA_4096', algorithms: RSA, type: 'rsa', details: { modulusLength: 4096 } },
  { spec: 'EC_P256', algorithms: ECDSA, type: 'ec', details: { namedCurve: 'prime256v1' } },
  { spec: 'EC_P384', algorithms: ECDSA, type: 'ec', details: { namedCurve: 'secp384r1' } },
  { spec: 'SECP256K1', algorithms: ECDSA, type: 'ec', details: { namedCurve: 'secp256k1' } },
  { spec: 'ED25519', algorithms: ['EDDSA'], type: 'ed25519', details: {} },
];

/** What the modules of the test projects lack, as their mechanism lists and probes show it. */
const LACKING: Readonly<Record<ReturnType<typeof testModuleKind>, readonly KeySpec[]>> = {
  softhsm: [],
  // NSS 3.87's softoken has no Edwards curves, and no secp256k1.
  nss: ['ED25519', 'SECP256K1'],
  fips: [],
};

function checkWithNode(algorithm: SigningAlgorithm, publicKey: KeyObject, message: Buffer, signature: Buffer): boolean {
  const node = NODE[algorithm];
  const key = node.pss ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: HASH_BYTES[node.hash!] } : publicKey;
  return nodeVerify(node.hash, message, key, signature);
}

async function newKey(spec: KeySpec): Promise<MaterialRef> {
  const ref = { keyId: randomUUID(), version: 0 };
  await hsm.generateKey(ref, spec, { fresh: true, usage: 'SIGN_VERIFY' });
  return ref;
}

describe('what the module can sign with', () => {
  it.each(SPECS.map(({ spec }) => spec))('%s: supported unless this module lacks it, and then refused and listed', async (spec) => {
    const lacking = LACKING[testModuleKind()].includes(spec);
    expect(hsm.supports(spec, 'SIGN_VERIFY')).toBe(!lacking);
    if (lacking) {
      expect(hsm.capabilities.missing.some((line) => line.startsWith(`${spec}`))).toBe(true);
      await expect(hsm.generateKey({ keyId: randomUUID(), version: 0 }, spec, { fresh: true })).rejects.toMatchObject({ code: 'KMS.0103' });
    }
  });

  it('no spec can be made for a usage that is not its kind (an RSA key never agrees keys, an EC key never decrypts)', () => {
    expect(hsm.supports('RSA_2048', 'KEY_AGREEMENT')).toBe(false);
    expect(hsm.supports('EC_P256', 'ENCRYPT_DECRYPT')).toBe(false);
    expect(hsm.supports('ED25519', 'KEY_AGREEMENT')).toBe(false);
    expect(hsm.supports('AES_256', 'SIGN_VERIFY')).toBe(false);
  });

  it('hashes in the service for ECDSA where the module lacks the combined mechanism (SoftHSM 2.6.1 has no CKM_ECDSA_SHA256; NSS has it)', () => {
    const expected = testModuleKind() === 'nss' ? [] : ['ECDSA_SHA_256', 'ECDSA_SHA_384', 'ECDSA_SHA_512'];
    expect([...hsm.capabilities.hashedInService].sort()).toEqual(expected);
  });
});

describe.each(SPECS)('$spec', ({ spec, algorithms, type, details }) => {
  const supported = (): boolean => hsm.supports(spec, 'SIGN_VERIFY');
  let ref: MaterialRef;
  let publicKey: KeyObject;

  beforeAll(async () => {
    if (!supported()) return;
    ref = await newKey(spec);
    publicKey = createPublicKey({ key: await hsm.keyPairs.publicKey(ref, spec), format: 'der', type: 'spki' });
  }, 60_000);

  it('exports its public key as DER SubjectPublicKeyInfo that Node loads', () => {
    if (!supported()) return;
    expect(publicKey.asymmetricKeyType).toBe(type);
    expect(publicKey.asymmetricKeyDetails).toMatchObject(details);
  });

  it.each(algorithms)('%s: a RAW message and its DIGEST are signed in the token, and Node verifies both', async (algorithm) => {
    if (!supported()) return;
    const message = Buffer.from(`a message for ${algorithm} ${randomUUID()}`);
    const raw = await hsm.signing.sign(ref, { spec, algorithm, messageType: 'RAW', message });
    expect(checkWithNode(algorithm, publicKey, message, raw)).toBe(true);
    expect(checkWithNode(algorithm, publicKey, Buffer.from('another message'), raw)).toBe(false);
    // The token verifies it too, and refuses it for another message (false, not an error).
    expect(await hsm.signing.verify(ref, { spec, algorithm, messageType: 'RAW', message }, raw)).toBe(true);
    expect(await hsm.signing.verify(ref, { spec, algorithm, messageType: 'RAW', message: Buffer.from('another message') }, raw)).toBe(false);
    const tampered = Buffer.from(raw);
    tampered[tampered.length - 1]! ^= 0x01;
    expect(await hsm.signing.verify(ref, { spec, algorithm, messageType: 'RAW', message }, tampered)).toBe(false);

    // The empty message too (pkcs11js hands C_Sign an empty buffer as a NULL pointer): signed, or
    // for EdDSA (single-part in PKCS#11) refused as the caller's error, not a 500.
    const emptyInput = { spec, algorithm, messageType: 'RAW', message: Buffer.alloc(0) } as const;
    if (algorithm === 'EDDSA') {
      await expect(hsm.signing.sign(ref, emptyInput)).rejects.toMatchObject({ code: 'KMS.0308' });
    } else {
      const empty = await hsm.signing.sign(ref, emptyInput);
      expect(checkWithNode(algorithm, publicKey, Buffer.alloc(0), empty)).toBe(true);
      expect(await hsm.signing.verify(ref, emptyInput, empty)).toBe(true);
    }

    const hash = NODE[algorithm].hash;
    if (hash) {
      const digest = createHash(hash).update(message).digest();
      const signed = await hsm.signing.sign(ref, { spec, algorithm, messageType: 'DIGEST', message: digest });
      expect(checkWithNode(algorithm, publicKey, message, signed)).toBe(true);
      expect(await hsm.signing.verify(ref, { spec, algorithm, messageType: 'DIGEST', message: digest }, signed)).toBe(true);
    }
  });

  it('refuses an algorithm of another family (KMS.0332), and a digest of the wrong length (KMS.0329)', async () => {
    if (!supported()) return;
    const other: SigningAlgorithm = type === 'rsa' ? 'ECDSA_SHA_256' : 'RSASSA_PSS_SHA_256';
    await expect(hsm.signing.sign(ref, { spec, algorithm: other, messageType: 'RAW', message: Buffer.from('x') })).rejects.toMatchObject({ code: 'KMS.0332' });
    const algorithm = algorithms[0]!;
    if (NODE[algorithm].hash) {
      await expect(hsm.signing.sign(ref, { spec, algorithm, messageType: 'DIGEST', message: Buffer.alloc(20) })).rejects.toMatchObject({ code: 'KMS.0329' });
    } else {
      await expect(hsm.signing.sign(ref, { spec, algorithm, messageType: 'DIGEST', message: Buffer.alloc(32) })).rejects.toMatchObject({ code: 'KMS.0308' });
    }
  });
});

describe('ECDSA signatures are DER, as X.509 and Huawei have them', () => {
  it('a SEQUENCE of two INTEGERs that Node reads as DER; a signature that is not DER verifies false, it does not throw', async () => {
    if (!hsm.supports('EC_P256', 'SIGN_VERIFY')) return;
    const ref = await newKey('EC_P256');
    const publicKey = createPublicKey({ key: await hsm.keyPairs.publicKey(ref, 'EC_P256'), format: 'der', type: 'spki' });
    const input = { spec: 'EC_P256', algorithm: 'ECDSA_SHA_256', messageType: 'RAW', message: Buffer.from('der') } as const;
    // Many signatures, so that some r or s has its high bit set (a leading zero in DER) and some has a leading zero byte.
    for (let i = 0; i < 16; i++) {
      const signature = await hsm.signing.sign(ref, input);
      expect(signature[0]).toBe(0x30);
      expect(signature[1]).toBe(signature.length - 2);
      expect(nodeVerify('sha256', input.message, { key: publicKey, dsaEncoding: 'der' }, signature)).toBe(true);
    }
    const signature = await hsm.signing.sign(ref, input);
    // r‖s as PKCS#11 gives it is not accepted as a DER signature.
    const p1363 = Buffer.alloc(64);
    expect(await hsm.signing.verify(ref, input, p1363)).toBe(false);
    expect(await hsm.signing.verify(ref, input, signature.subarray(0, signature.length - 1))).toBe(false);
    expect(await hsm.signing.verify(ref, input, Buffer.concat([signature, Buffer.from([0])]))).toBe(false);
  });
});

describe('a signing key pair in the token', () => {
  it.each([
    ['RSA_2048', pkcs11.CKA_PRIVATE_EXPONENT],
    ['EC_P256', pkcs11.CKA_VALUE],
    ['ED25519', pkcs11.CKA_VALUE],
  ] as const)('%s: a private key that is sensitive, never extractable, unmodifiable and signs only; a public key that verifies only', async (spec, secretPart) => {
    if (!hsm.supports(spec, 'SIGN_VERIFY')) return;
    const ref = await newKey(spec);
    const label = `kms/${ref.keyId}/v0`;
    expect(readFlags(side, ref, 'private')).toEqual({
      label,
      token: true,
      private: true,
      modifiable: false,
      uses: { sign: true, decrypt: false, unwrap: false, derive: false },
      protection: PROTECTED,
    });
    expect(readFlags(side, ref, 'public')).toEqual({
      label,
      token: true,
      private: false,
      modifiable: false,
      uses: { verify: true, encrypt: false, wrap: false, derive: false },
    });
    expect(readSecretPart(side, ref, 'private', secretPart)).toBe(pkcs11.CKR_ATTRIBUTE_SENSITIVE);
  });
});
