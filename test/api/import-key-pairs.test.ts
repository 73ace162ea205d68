import { constants, createCipheriv, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, verify, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli } from '../helpers/cli';
import * as pkcs11 from 'pkcs11js';
import { createKeyId, expectKmsError } from '../helpers/client';
import { PROTECTED, readFlags, readSecretPart } from '../helpers/key-attributes';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';
import { testModuleKind } from '../helpers/test-module';

/**
 * Bring your own key pair: an external RSA or EC key, its private key (DER PKCS#8) wrapped with
 * AES key wrap with padding (RFC 5649) under a temporary AES key that is itself wrapped under the
 * import's RSA wrapping key, both made here with Node's crypto as a user would with OpenSSL. The
 * imported key signs (or decrypts) in the HSM as a generated one does, and get-publickey answers
 * the user's own public key. NSS's softoken cannot take an EC private key without its public value
 * in a vendor attribute: there, EC keys cannot be external (found at start-up); SoftHSM and the
 * FIPS-style shim over it import both families.
 */

const t = useTestService();
const kms = t.client('project-a');
let side: SideChannel;

beforeAll(() => {
  side = new SideChannel(t.config.hsm);
});

/** SoftHSM 2.6 (and the shim over it) unwraps OAEP with SHA-1 only; NSS's softoken takes SHA-256, the SDK's. */
const ALGORITHM = testModuleKind() === 'nss' ? 'RSAES_OAEP_SHA_256' : 'RSAES_OAEP_SHA_1';
const HASH = ALGORITHM === 'RSAES_OAEP_SHA_256' ? 'sha256' : 'sha1';
const EC_IMPORTED = testModuleKind() !== 'nss';

let aliases = 0;
const externalPair = (keySpec: string, keyUsage = 'SIGN_VERIFY') => createKeyId(kms, `byok-pair-${++aliases}`, { key_spec: keySpec, key_usage: keyUsage, origin: 'external' });

/** A private key as a user makes one (DER PKCS#8), and its public key. */
function userKeyPair(spec: string): { privateKey: KeyObject; publicKey: KeyObject } {
  if (spec.startsWith('RSA_')) return generateKeyPairSync('rsa', { modulusLength: Number(spec.slice(4)) });
  const curve = { EC_P256: 'prime256v1', EC_P384: 'secp384r1', SECP256K1: 'secp256k1' }[spec];
  if (!curve) throw new Error(`no curve for ${spec}`);
  return generateKeyPairSync('ec', { namedCurve: curve });
}

/** `data` under `key` with AES key wrap with padding (RFC 5649), as `openssl enc -id-aes256-wrap-pad` makes it. */
function wrapPadded(key: Buffer, data: Buffer): Buffer {
  const cipher = createCipheriv(`id-aes${key.length * 8}-wrap-pad`, key, Buffer.from('a65959a6', 'hex'));
  return Buffer.concat([cipher.update(data), cipher.final()]);
}

/** The import-key-material request of `privateKey` for `keyId`: fresh parameters, a temporary key of `temporaryBytes`. */
async function importRequest(keyId: string, privateKey: KeyObject | Buffer, temporaryBytes = 32): Promise<Record<string, unknown>> {
  const parameters = await kms.call('get-parameters-for-import', { key_id: keyId, wrapping_algorithm: ALGORITHM });
  expect(parameters.status).toBe(200);
  const wrapping = createPublicKey({ key: Buffer.from(parameters.body.public_key, 'base64'), format: 'der', type: 'spki' });
  const temporary = randomBytes(temporaryBytes);
  const der = Buffer.isBuffer(privateKey) ? privateKey : privateKey.export({ type: 'pkcs8', format: 'der' });
  return {
    key_id: keyId,
    import_token: parameters.body.import_token,
    encrypted_key_material: publicEncrypt({ key: wrapping, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: HASH }, temporary).toString('base64'),
    encrypted_privatekey: wrapPadded(temporary.length === 16 || temporary.length === 32 ? temporary : randomBytes(32), der).toString('base64'),
  };
}

async function publicKeyOf(keyId: string): Promise<KeyObject> {
  const answer = await kms.call('get-publickey', { key_id: keyId });
  expect(answer.status).toBe(200);
  return createPublicKey(answer.body.public_key as string);
}

const spki = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });

/** A signature made by the service with `keyId` over `message`, checked by Node's crypto with `publicKey`. */
async function signsAs(keyId: string, algorithm: string, publicKey: KeyObject): Promise<void> {
  const message = randomBytes(64);
  const signed = await kms.call('sign', { key_id: keyId, signing_algorithm: algorithm, message: message.toString('base64'), message_type: 'RAW' });
  expect(signed.status).toBe(200);
  const signature = Buffer.from(signed.body.signature as string, 'base64');
  const key = algorithm.startsWith('RSASSA_PSS') ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : publicKey;
  expect(verify('sha256', message, key, signature)).toBe(true);
}

describe('importing a key pair\'s private key', () => {
  it.each([
    ['RSA_2048', 'RSASSA_PSS_SHA_256', 32],
    ['RSA_3072', 'RSASSA_PKCS1_V1_5_SHA_256', 16],
    ['EC_P256', 'ECDSA_SHA_256', 32],
    ['EC_P384', 'ECDSA_SHA_256', 16],
    ['SECP256K1', 'ECDSA_SHA_256', 32],
  ])('%s: the key is enabled, signs (%s) as the user\'s key, get-publickey answers the user\'s public key; its private key is sensitive and never extractable (temporary key of %i bytes)', async (spec, algorithm, temporaryBytes) => {
    if (spec.startsWith('EC') || spec === 'SECP256K1') {
      if (!EC_IMPORTED || !t.service.hsm.supports(spec as 'EC_P256', 'SIGN_VERIFY')) {
        expectKmsError(await kms.call('create-key', { key_alias: `byok-pair-${++aliases}`, key_spec: spec, origin: 'external' }), 400, 'KMS.0308');
        return;
      }
    }
    const keyId = await externalPair(spec);
    const described = await kms.call('describe-key', { key_id: keyId });
    expect(described.body.key_info).toMatchObject({ key_state: '5', origin: 'external', key_spec: spec });
    const user = userKeyPair(spec);
    const imported = await kms.call('import-key-material', await importRequest(keyId, user.privateKey, temporaryBytes));
    expect(imported.status).toBe(200);
    expect(imported.body).toEqual({});
    expect((await kms.call('describe-key', { key_id: keyId })).body.key_info.key_state).toBe('2');
    expect(spki(await publicKeyOf(keyId)).equals(spki(user.publicKey))).toBe(true);
    await signsAs(keyId, algorithm, user.publicKey);

    const ref = { keyId, version: 0 };
    expect(readFlags(side, ref, 'private')).toMatchObject({ token: true, private: true, uses: { sign: true, decrypt: false, unwrap: false, derive: false }, protection: expect.objectContaining({ sensitive: PROTECTED.sensitive, extractable: PROTECTED.extractable }) });
    expect(readFlags(side, ref, 'public')).toMatchObject({ token: true, private: false, uses: { verify: true, encrypt: false, wrap: false, derive: false } });
    const secretPart = spec.startsWith('RSA') ? pkcs11.CKA_PRIVATE_EXPONENT : pkcs11.CKA_VALUE;
    expect(readSecretPart(side, ref, 'private', secretPart)).toBe(pkcs11.CKR_ATTRIBUTE_SENSITIVE);
    // The wrapping key pair has served: the token holds the key's two objects only.
    expect(t.service.hsm.listKeys().filter((other) => other.keyId === keyId)).toEqual([ref]);
  });

  it('an RSA key to decrypt: what Node\'s crypto encrypts with the user\'s public key, decrypt-data opens', async () => {
    const keyId = await externalPair('RSA_2048', 'ENCRYPT_DECRYPT');
    const user = userKeyPair('RSA_2048');
    expect((await kms.call('import-key-material', await importRequest(keyId, user.privateKey))).status).toBe(200);
    const plain = randomBytes(48);
    const cipher = publicEncrypt({ key: await publicKeyOf(keyId), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: HASH }, plain);
    const decrypted = await kms.call('decrypt-data', { key_id: keyId, cipher_text: cipher.toString('base64'), encryption_algorithm: ALGORITHM });
    expect(decrypted.status).toBe(200);
    expect(Buffer.from(decrypted.body.plain_text_base64 as string, 'base64').equals(plain)).toBe(true);
    // Its objects do that and nothing else (NSS's softoken would allow the private key to unwrap).
    expect(readFlags(side, { keyId, version: 0 }, 'private').uses).toEqual({ sign: false, decrypt: true, unwrap: false, derive: false });
    expect(readFlags(side, { keyId, version: 0 }, 'public').uses).toEqual({ verify: false, encrypt: true, wrap: false, derive: false });
    // And the user's own private key still opens what the service's public key sealed: one key pair.
    expect(privateDecrypt({ key: user.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: HASH }, cipher).equals(plain)).toBe(true);
  });
});

describe('import-key-material of a key pair refuses', () => {
  it('a request without encrypted_privatekey (KMS.2608), a temporary key of another length (KMS.2610), and a private key that is not the key\'s spec or does not unwrap (KMS.2609); nothing is written to the token', async () => {
    const keyId = await externalPair('RSA_2048');
    // Each request gets its own parameters: a new one replaces the wrapping key of those before.
    const fresh = () => importRequest(keyId, userKeyPair('RSA_2048').privateKey);
    const { encrypted_privatekey: _omitted, ...withoutPrivateKey } = await fresh();
    expectKmsError(await kms.call('import-key-material', withoutPrivateKey), 400, 'KMS.2608');
    for (const length of [0, 1, 8, 12, 20, 24, 28, 40]) expectKmsError(await kms.call('import-key-material', await importRequest(keyId, userKeyPair('RSA_2048').privateKey, length)), 400, 'KMS.2610');
    // Another size of RSA key.
    expectKmsError(await kms.call('import-key-material', await importRequest(keyId, userKeyPair('RSA_3072').privateKey)), 400, 'KMS.2609');
    // Wrapped under another temporary key than the one encrypted_key_material carries.
    const otherTemporary = wrapPadded(randomBytes(32), userKeyPair('RSA_2048').privateKey.export({ type: 'pkcs8', format: 'der' }));
    expectKmsError(await kms.call('import-key-material', { ...(await fresh()), encrypted_privatekey: otherTemporary.toString('base64') }), 400, 'KMS.2609');
    // Random bytes, of a length RFC 5649 can make and of one it cannot.
    expectKmsError(await kms.call('import-key-material', { ...(await fresh()), encrypted_privatekey: randomBytes(1224).toString('base64') }), 400, 'KMS.2609');
    expectKmsError(await kms.call('import-key-material', { ...(await fresh()), encrypted_privatekey: randomBytes(1225).toString('base64') }), 400, 'KMS.2609');
    // Not a private key at all, properly wrapped.
    expectKmsError(await kms.call('import-key-material', await importRequest(keyId, randomBytes(1200))), 400, 'KMS.2609');
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expect((await kms.call('describe-key', { key_id: keyId })).body.key_info.key_state).toBe('5');
    // An EC key into an RSA key.
    if (EC_IMPORTED) expectKmsError(await kms.call('import-key-material', await importRequest(keyId, userKeyPair('EC_P256').privateKey)), 400, 'KMS.2609');
    // An AES key takes no encrypted_privatekey.
    const aes = await createKeyId(kms, `byok-aes-${++aliases}`, { origin: 'external' });
    expectKmsError(await kms.call('import-key-material', { ...(await importRequest(aes, userKeyPair('RSA_2048').privateKey)) }), 400, 'KMS.0308');
  });

  it('an EC private key of another curve (KMS.2609)', async () => {
    if (!EC_IMPORTED) return;
    const keyId = await externalPair('EC_P256');
    expectKmsError(await kms.call('import-key-material', await importRequest(keyId, userKeyPair('EC_P384').privateKey)), 400, 'KMS.2609');
    expectKmsError(await kms.call('import-key-material', await importRequest(keyId, userKeyPair('SECP256K1').privateKey)), 400, 'KMS.2609');
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
  });

  it('a private key whose parts do not agree (KMS.2609): an RSA key whose modulus is another key\'s, EC scalars of 0 and of the curve\'s order', async () => {
    const keyId = await externalPair('RSA_2048');
    const own = userKeyPair('RSA_2048').privateKey.export({ format: 'jwk' });
    const other = userKeyPair('RSA_2048').privateKey.export({ format: 'jwk' });
    const mixed = createPrivateKey({ key: { ...own, n: other.n }, format: 'jwk' }).export({ type: 'pkcs8', format: 'der' });
    expectKmsError(await kms.call('import-key-material', await importRequest(keyId, mixed)), 400, 'KMS.2609');
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    if (!EC_IMPORTED) return;
    const ecKey = await externalPair('EC_P256');
    // A P-256 PKCS#8 of the scalar alone, as a hand-made one may be.
    const p256 = (scalar: Buffer) => Buffer.concat([Buffer.from('3041020100301306072a8648ce3d020106082a8648ce3d030107042730250201010420', 'hex'), scalar]);
    const order = Buffer.from('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551', 'hex');
    for (const scalar of [Buffer.alloc(32), order]) expectKmsError(await kms.call('import-key-material', await importRequest(ecKey, p256(scalar))), 400, 'KMS.2609');
    expect(await t.service.hsm.hasKey({ keyId: ecKey, version: 0 })).toBe(false);
    // A scalar in range, without its public key in the PKCS#8: the HSM finds the point.
    const scalar = randomBytes(32);
    scalar[0] = 0x7f;
    expect((await kms.call('import-key-material', await importRequest(ecKey, p256(scalar)))).status).toBe(200);
    const expected = createPublicKey(createPrivateKey({ key: p256(scalar), format: 'der', type: 'pkcs8' }));
    expect(spki(await publicKeyOf(ecKey)).equals(spki(expected))).toBe(true);
  });

  it('keys of kinds whose private keys cannot be imported: HMAC and Ed25519 keys cannot be external (KMS.0308)', async () => {
    for (const spec of ['HMAC_256', 'ED25519']) {
      expectKmsError(await kms.call('create-key', { key_alias: `byok-pair-${++aliases}`, key_spec: spec, origin: 'external' }), 400, 'KMS.0308');
    }
  });
});

describe('delete-imported-key-material of a key pair and re-import', () => {
  it('destroys both objects (state 5, sign refused); only the same private key comes back (KMS.2606), and signs again', async () => {
    const spec = EC_IMPORTED ? 'EC_P256' : 'RSA_2048';
    const algorithm = EC_IMPORTED ? 'ECDSA_SHA_256' : 'RSASSA_PSS_SHA_256';
    const keyId = await externalPair(spec);
    const user = userKeyPair(spec);
    expect((await kms.call('import-key-material', await importRequest(keyId, user.privateKey))).status).toBe(200);
    expect((await kms.call('delete-imported-key-material', { key_id: keyId })).status).toBe(200);
    expect((await kms.call('describe-key', { key_id: keyId })).body.key_info.key_state).toBe('5');
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    const digest = createHash('sha256').update('x').digest().toString('base64');
    expectKmsError(await kms.call('sign', { key_id: keyId, signing_algorithm: algorithm, message: digest }), 400, 'KMS.1301');
    expectKmsError(await kms.call('import-key-material', await importRequest(keyId, userKeyPair(spec).privateKey)), 400, 'KMS.2606');
    expect(await t.service.hsm.hasKey({ keyId, version: 0 })).toBe(false);
    expect((await kms.call('import-key-material', await importRequest(keyId, user.privateKey, 16))).status).toBe(200);
    await signsAs(keyId, algorithm, user.publicKey);
  });
});

describe('the command line: kms key import --private-key', () => {
  it('imports a private key from a PEM or DER file into an external key pair (audited in audit-cli.log, never the key); a file that is no private key is a usage error', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kms-byok-pair-'));
    try {
      const user = userKeyPair('RSA_2048');
      const pem = path.join(dir, 'private.pem');
      writeFileSync(pem, user.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const der = path.join(dir, 'private.der');
      writeFileSync(der, user.privateKey.export({ type: 'pkcs1', format: 'der' }), { mode: 0o600 });
      const junk = path.join(dir, 'junk.bin');
      writeFileSync(junk, randomBytes(100));

      const keyId = await externalPair('RSA_2048');
      const refused = await runCli(t, ['key', 'import', '--project', 'project-a', keyId, '--private-key', junk]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('--private-key must be a private key file');
      const both = await runCli(t, ['key', 'import', '--project', 'project-a', keyId, '--private-key', pem, '--material', junk]);
      expect(both.code).toBe(2);
      expect(both.stderr).toContain('needs one of --material FILE');

      const imported = await runCli(t, ['key', 'import', '--project', 'project-a', keyId, '--private-key', pem]);
      expect({ code: imported.code, stderr: imported.stderr }).toEqual({ code: 0, stderr: '' });
      expect(spki(await publicKeyOf(keyId)).equals(spki(user.publicKey))).toBe(true);
      await signsAs(keyId, 'RSASSA_PSS_SHA_256', user.publicKey);
      const chain = readFileSync(path.join(t.dataDir, 'audit-cli.log'), 'utf8');
      const records = chain.trim().split('\n').map((line) => JSON.parse(line) as { action?: string; key_id?: string; result?: string }).filter((record) => record.key_id === keyId);
      expect(records.map((record) => [record.action, record.result])).toEqual([
        ['get-parameters-for-import', 'OK'],
        ['import-key-material', 'OK'],
      ]);
      const secret = user.privateKey.export({ type: 'pkcs8', format: 'der' });
      expect(chain).not.toContain(secret.subarray(-40).toString('base64').slice(0, 24));

      // The same key again after a deletion, from its DER (PKCS#1) form.
      expect((await kms.call('delete-imported-key-material', { key_id: keyId })).status).toBe(200);
      expect((await runCli(t, ['key', 'import', '--project', 'project-a', keyId, '--private-key', der])).code).toBe(0);
      await signsAs(keyId, 'RSASSA_PSS_SHA_256', user.publicKey);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
