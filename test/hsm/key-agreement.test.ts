/**
 * The key agreement role on a real token: ECDH of a KEY_AGREEMENT key in the token with a peer's
 * public key equals what Node's crypto computes from the peer's private key and the public key the
 * key pairs role exported, on every curve the module has; a peer key on another curve, or one
 * that is no point, is the caller's KMS.0308; the private key may derive and nothing else.
 */
import { createECDH, createPublicKey, generateKeyPairSync, randomUUID, diffieHellman, type KeyObject } from 'node:crypto';
import * as pkcs11 from 'pkcs11js';
import type { Hsm, KeySpec, MaterialRef } from '../../src/hsm/hsm';
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

/** Each agreeing spec, its curve's name in Node, and its coordinates' size. */
const CURVES: ReadonlyArray<{ spec: KeySpec; curve: string; bytes: number }> = [
  { spec: 'EC_P256', curve: 'prime256v1', bytes: 32 },
  { spec: 'EC_P384', curve: 'secp384r1', bytes: 48 },
  { spec: 'SECP256K1', curve: 'secp256k1', bytes: 32 },
];

/** NSS 3.87's softoken has no secp256k1. */
const LACKING: Readonly<Record<ReturnType<typeof testModuleKind>, readonly KeySpec[]>> = { softhsm: [], fips: [], nss: ['SECP256K1'] };

async function newKey(spec: KeySpec): Promise<{ ref: MaterialRef; publicKey: KeyObject }> {
  const ref = { keyId: randomUUID(), version: 0 };
  await hsm.generateKey(ref, spec, { fresh: true, usage: 'KEY_AGREEMENT' });
  return { ref, publicKey: createPublicKey({ key: await hsm.keyPairs.publicKey(ref, spec), format: 'der', type: 'spki' }) };
}

function peerSpki(publicKey: KeyObject): Buffer {
  return publicKey.export({ type: 'spki', format: 'der' });
}

describe.each(CURVES)('$spec for KEY_AGREEMENT', ({ spec, curve, bytes }) => {
  const lacking = (): boolean => LACKING[testModuleKind()].includes(spec);

  it('is supported unless the module lacks the curve; then listed, and refused at generation', async () => {
    expect(hsm.supports(spec, 'KEY_AGREEMENT')).toBe(!lacking());
    if (lacking()) await expect(hsm.generateKey({ keyId: randomUUID(), version: 0 }, spec, { fresh: true, usage: 'KEY_AGREEMENT' })).rejects.toMatchObject({ code: 'KMS.0103' });
  });

  it("derives the shared secret Node derives from the peer's private key and the exported public key", async () => {
    if (lacking()) return;
    const key = await newKey(spec);
    expect(key.publicKey.asymmetricKeyDetails?.namedCurve).toBe(curve);
    for (let i = 0; i < 3; i++) {
      const peer = generateKeyPairSync('ec', { namedCurve: curve });
      const secret = await hsm.keyAgreement.deriveSharedSecret(key.ref, spec, peerSpki(peer.publicKey));
      expect(secret).toHaveLength(bytes);
      expect(secret.equals(diffieHellman({ privateKey: peer.privateKey, publicKey: key.publicKey }))).toBe(true);
    }
  });

  it('refuses a peer key on another curve, of another kind, not DER, or not a point of the curve (KMS.0308)', async () => {
    if (lacking()) return;
    const key = await newKey(spec);
    const otherCurve = curve === 'secp384r1' ? 'prime256v1' : 'secp384r1';
    const refused = expect.objectContaining({ code: 'KMS.0308' });
    await expect(hsm.keyAgreement.deriveSharedSecret(key.ref, spec, peerSpki(generateKeyPairSync('ec', { namedCurve: otherCurve }).publicKey))).rejects.toEqual(refused);
    await expect(hsm.keyAgreement.deriveSharedSecret(key.ref, spec, peerSpki(generateKeyPairSync('ed25519').publicKey))).rejects.toEqual(refused);
    await expect(hsm.keyAgreement.deriveSharedSecret(key.ref, spec, Buffer.from('not a key'))).rejects.toEqual(refused);
    // A point off the curve: the peer's SPKI with its y coordinate changed.
    const ecdh = createECDH(curve);
    ecdh.generateKeys();
    const spki = peerSpki(createPublicKey({ key: { kty: 'EC', crv: jwkCurve(curve), ...jwkPoint(ecdh.getPublicKey()) }, format: 'jwk' }));
    spki[spki.length - 1]! ^= 0x01;
    await expect(hsm.keyAgreement.deriveSharedSecret(key.ref, spec, spki)).rejects.toEqual(refused);
  });
});

function jwkCurve(curve: string): string {
  return { prime256v1: 'P-256', secp384r1: 'P-384', secp256k1: 'secp256k1' }[curve]!;
}

function jwkPoint(point: Buffer): { x: string; y: string } {
  const half = (point.length - 1) / 2;
  return { x: point.subarray(1, 1 + half).toString('base64url'), y: point.subarray(1 + half).toString('base64url') };
}

describe('an EC key pair for KEY_AGREEMENT in the token', () => {
  it('has a private key that is sensitive, never extractable and derives only, and a public key that does nothing in the token', async () => {
    const { ref } = await newKey('EC_P256');
    const label = `kms/${ref.keyId}/v0`;
    expect(readFlags(side, ref, 'private')).toEqual({
      label,
      token: true,
      private: true,
      modifiable: false,
      uses: { derive: true, sign: false, decrypt: false, unwrap: false },
      protection: PROTECTED,
    });
    expect(readFlags(side, ref, 'public')).toEqual({ label, token: true, private: false, modifiable: false, uses: { verify: false, encrypt: false, wrap: false, derive: false } });
    expect(readSecretPart(side, ref, 'private', pkcs11.CKA_VALUE)).toBe(pkcs11.CKR_ATTRIBUTE_SENSITIVE);
  });

  it('a signing EC key cannot derive, and an agreeing one cannot sign: the token refuses (the service checks key_usage first, KMS.0103 here)', async () => {
    const agreeing = await newKey('EC_P256');
    await expect(
      hsm.signing.sign(agreeing.ref, { spec: 'EC_P256', algorithm: 'ECDSA_SHA_256', messageType: 'DIGEST', message: Buffer.alloc(32) }),
    ).rejects.toMatchObject({ code: 'KMS.0103' });
    const signing = { keyId: randomUUID(), version: 0 };
    await hsm.generateKey(signing, 'EC_P256', { fresh: true, usage: 'SIGN_VERIFY' });
    const peer = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    await expect(hsm.keyAgreement.deriveSharedSecret(signing, 'EC_P256', peerSpki(peer.publicKey))).rejects.toMatchObject({ code: 'KMS.0103' });
  });
});
