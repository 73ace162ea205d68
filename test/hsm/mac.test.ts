/**
 * The MAC role on a real token: a MAC made through the role equals Node's HMAC of the same message
 * under the same key. The service's own keys never leave the token, so the comparison uses a key
 * the test knows, put in the token through the side channel with the CKA_ID and label the service
 * looks up; the service's keys are checked to make and verify MACs, and to be sensitive and never
 * extractable.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import * as pkcs11 from 'pkcs11js';
import type { Hsm, KeySpec, MacAlgorithm, MaterialRef } from '../../src/hsm/hsm';
import { PROTECTED, rawObjectId, readFlags, readSecretPart } from '../helpers/key-attributes';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';

const t = useTestService();
let hsm: Hsm;
let side: SideChannel;

beforeAll(() => {
  hsm = t.service.hsm;
  side = new SideChannel(t.config.hsm);
});

const KINDS: ReadonlyArray<{ spec: KeySpec; algorithm: MacAlgorithm; hash: string; bytes: number }> = [
  { spec: 'HMAC_256', algorithm: 'HMAC_SHA_256', hash: 'sha256', bytes: 32 },
  { spec: 'HMAC_384', algorithm: 'HMAC_SHA_384', hash: 'sha384', bytes: 48 },
  { spec: 'HMAC_512', algorithm: 'HMAC_SHA_512', hash: 'sha512', bytes: 64 },
];

async function newKey(spec: KeySpec): Promise<MaterialRef> {
  const ref = { keyId: randomUUID(), version: 0 };
  await hsm.generateKey(ref, spec, { fresh: true });
  return ref;
}

describe.each(KINDS)('$spec', ({ spec, algorithm, hash, bytes }) => {
  let ref: MaterialRef;

  beforeAll(async () => {
    expect(hsm.supports(spec, 'GENERATE_VERIFY_MAC')).toBe(true);
    expect(hsm.supportsAlgorithm(algorithm)).toBe(true);
    ref = await newKey(spec);
  });

  it(`makes ${algorithm} MACs the token verifies, and refuses another message's or a changed one (false, not an error)`, async () => {
    const message = randomBytes(100);
    const mac = await hsm.mac.generateMac(ref, algorithm, message);
    expect(mac).toHaveLength(bytes);
    // HMAC is deterministic: the same message, the same MAC.
    expect((await hsm.mac.generateMac(ref, algorithm, message)).equals(mac)).toBe(true);
    expect(await hsm.mac.verifyMac(ref, algorithm, message, mac)).toBe(true);
    expect(await hsm.mac.verifyMac(ref, algorithm, randomBytes(100), mac)).toBe(false);
    const changed = Buffer.from(mac);
    changed[0]! ^= 0x01;
    expect(await hsm.mac.verifyMac(ref, algorithm, message, changed)).toBe(false);
    expect(await hsm.mac.verifyMac(ref, algorithm, message, mac.subarray(0, bytes - 1))).toBe(false);
    expect(await hsm.mac.verifyMac(ref, algorithm, message, Buffer.alloc(0))).toBe(false);
    // Another key's MAC of the same message differs.
    expect((await hsm.mac.generateMac(await newKey(spec), algorithm, message)).equals(mac)).toBe(false);
  });

  it("equals Node's HMAC under a key the test knows, put in the token with the service's CKA_ID and label", async () => {
    const known = { keyId: randomUUID(), version: 0 };
    const value = randomBytes(bytes);
    side.withSession((session) =>
      side.createObject(session, [
        { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
        { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_GENERIC_SECRET },
        { type: pkcs11.CKA_TOKEN, value: true },
        { type: pkcs11.CKA_PRIVATE, value: true },
        { type: pkcs11.CKA_SIGN, value: true },
        { type: pkcs11.CKA_VERIFY, value: true },
        { type: pkcs11.CKA_VALUE, value },
        { type: pkcs11.CKA_ID, value: rawObjectId(known) },
        { type: pkcs11.CKA_LABEL, value: `kms/${known.keyId}/v0` },
      ]),
    );
    for (const message of [Buffer.alloc(0), randomBytes(1), randomBytes(4095)]) {
      const mac = await hsm.mac.generateMac(known, algorithm, message);
      expect(mac.equals(createHmac(hash, value).update(message).digest())).toBe(true);
      expect(await hsm.mac.verifyMac(known, algorithm, message, createHmac(hash, value).update(message).digest())).toBe(true);
    }
  });

  it('is a secret key that is sensitive, never extractable, unmodifiable and makes and checks MACs only', async () => {
    expect(readFlags(side, ref, 'secret')).toEqual({
      label: `kms/${ref.keyId}/v0`,
      token: true,
      private: true,
      modifiable: false,
      uses: { sign: true, verify: true, encrypt: false, decrypt: false, wrap: false, unwrap: false, derive: false },
      protection: PROTECTED,
    });
    expect(readSecretPart(side, ref, 'secret', pkcs11.CKA_VALUE)).toBe(pkcs11.CKR_ATTRIBUTE_SENSITIVE);
  });
});

it('an AES key cannot make MACs, nor an HMAC key encrypt: the token refuses (the service checks key_usage first, KMS.0103 here)', async () => {
  const aes = await newKey('AES_256');
  await expect(hsm.mac.generateMac(aes, 'HMAC_SHA_256', Buffer.from('x'))).rejects.toMatchObject({ code: 'KMS.0103' });
  const hmac = await newKey('HMAC_256');
  await expect(hsm.symmetric.encrypt(hmac, Buffer.from('x'), Buffer.alloc(0))).rejects.toMatchObject({ code: 'KMS.0103' });
});
