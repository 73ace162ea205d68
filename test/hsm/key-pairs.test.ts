/**
 * Key material of every class in the token over the service's life: a key pair is a private and
 * a public key object found by key id, version and class; start-up (and every re-read of the
 * token after a module re-initialisation) finds every class, so that a key pair made before a
 * restart or a recovery signs, agrees and MACs without a search; destruction takes both halves;
 * half a key pair left by an interrupted generation is made whole again.
 */
import { constants, createPublicKey, generateKeyPairSync, publicEncrypt, randomUUID, verify as nodeVerify, diffieHellman, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import type { Hsm, MaterialRef } from '../../src/hsm/hsm';
import { fetchResponse } from '../helpers/client';
import { findObject, rawObjectId } from '../helpers/key-attributes';
import { Metrics } from '../helpers/metrics';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';

let side: SideChannel;
const hsm = (): Hsm => t.service.hsm;
const METRICS_TOKEN = 'key-pairs-metrics-0123456789';
const metricsDir = mkdtempSync(path.join(tmpdir(), 'kms-key-pairs-'));

const t = useTestService(() => {
  const tokenFile = path.join(metricsDir, 'metrics-token');
  writeFileSync(tokenFile, `${METRICS_TOKEN}\n`, { mode: 0o600 });
  return { env: { KMS_METRICS_TOKEN_FILE: tokenFile } };
});

beforeAll(() => {
  side = new SideChannel(t.config.hsm);
});

afterAll(() => {
  rmSync(metricsDir, { recursive: true, force: true });
});

async function metrics(): Promise<Metrics> {
  const response = await fetchResponse(`${t.service.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(response.status).toBe(200);
  return Metrics.parse(response.body as string);
}

const newRef = (): MaterialRef => ({ keyId: randomUUID(), version: 0 });
const has = (refs: MaterialRef[], ref: MaterialRef): boolean => refs.filter((held) => held.keyId === ref.keyId && held.version === ref.version).length === 1;

/** One key of each class layout: a signing pair, an agreeing pair, a secret. */
interface Keys {
  signing: MaterialRef;
  agreeing: MaterialRef;
  mac: MaterialRef;
  signingPublic: Buffer;
  agreeingPublic: Buffer;
}

async function makeKeys(): Promise<Keys> {
  const signing = newRef();
  const agreeing = newRef();
  const mac = newRef();
  await hsm().generateKey(signing, 'EC_P256', { fresh: true, usage: 'SIGN_VERIFY' });
  await hsm().generateKey(agreeing, 'EC_P384', { fresh: true, usage: 'KEY_AGREEMENT' });
  await hsm().generateKey(mac, 'HMAC_256', { fresh: true });
  return { signing, agreeing, mac, signingPublic: await hsm().keyPairs.publicKey(signing, 'EC_P256'), agreeingPublic: await hsm().keyPairs.publicKey(agreeing, 'EC_P384') };
}

/** Signs, agrees and MACs with `keys`, each checked by Node with the public keys exported when they were made. */
async function useKeys(keys: Keys): Promise<void> {
  const message = Buffer.from('still here');
  const signature = await hsm().signing.sign(keys.signing, { spec: 'EC_P256', algorithm: 'ECDSA_SHA_256', messageType: 'RAW', message });
  expect(nodeVerify('sha256', message, spki(keys.signingPublic), signature)).toBe(true);
  const peer = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const secret = await hsm().keyAgreement.deriveSharedSecret(keys.agreeing, 'EC_P384', peer.publicKey.export({ type: 'spki', format: 'der' }));
  expect(secret.equals(diffieHellman({ privateKey: peer.privateKey, publicKey: spki(keys.agreeingPublic) }))).toBe(true);
  const mac = await hsm().mac.generateMac(keys.mac, 'HMAC_SHA_256', message);
  expect(await hsm().mac.verifyMac(keys.mac, 'HMAC_SHA_256', message, mac)).toBe(true);
}

function spki(der: Buffer): KeyObject {
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}

describe('start-up reconciliation', () => {
  it('finds every class after a restart: the pairs and the secret are listed once each, and used without a search of the token', async () => {
    const keys = await makeKeys();
    for (const ref of [keys.signing, keys.agreeing, keys.mac]) expect(has(hsm().listKeys(), ref)).toBe(true);
    await t.restart();
    side.initialize();
    for (const ref of [keys.signing, keys.agreeing, keys.mac]) expect(has(hsm().listKeys(), ref)).toBe(true);
    const finds = jest.spyOn(graphene.Session.prototype, 'find');
    try {
      await useKeys(keys);
      expect((await hsm().keyPairs.publicKey(keys.signing, 'EC_P256')).equals(keys.signingPublic)).toBe(true);
      expect(finds).not.toHaveBeenCalled();
    } finally {
      finds.mockRestore();
    }
  });
});

describe('recovery', () => {
  it('every role works on after the module lost its sessions, and after it was finalised underneath the service (the re-read finds every class)', async () => {
    const keys = await makeKeys();
    await useKeys(keys);
    side.closeAllSessions();
    await useKeys(keys);
    expect(t.logs.text).toContain('HSM session lost');
    const recoveries = hsm().state().recoveries;
    side.finalize();
    try {
      // The first call after it re-initialises the module, and the re-read of the token that follows finds the pairs too.
      await hsm().mac.generateMac(keys.mac, 'HMAC_SHA_256', Buffer.from('wake up'));
    } finally {
      side.initialize();
    }
    expect(hsm().state().recoveries).toBe(recoveries + 1);
    for (const ref of [keys.signing, keys.agreeing]) expect(has(hsm().listKeys(), ref)).toBe(true);
    const finds = jest.spyOn(graphene.Session.prototype, 'find');
    try {
      await useKeys(keys);
      expect(finds).not.toHaveBeenCalled();
    } finally {
      finds.mockRestore();
    }
  });
});

describe('destruction', () => {
  it('destroys both objects of a key pair; the key is then missing (KMS.0207)', async () => {
    const ref = newRef();
    await hsm().generateKey(ref, 'RSA_2048', { fresh: true });
    expect(await hsm().hasKey(ref)).toBe(true);
    expect(await hsm().destroyKey(ref)).toBe(true);
    expect(await hsm().hasKey(ref)).toBe(false);
    expect(has(hsm().listKeys(), ref)).toBe(false);
    side.withSession((session) => {
      expect(side.find(session, [{ type: pkcs11.CKA_ID, value: rawObjectId(ref) }])).toHaveLength(0);
    });
    await expect(hsm().signing.sign(ref, { spec: 'RSA_2048', algorithm: 'RSASSA_PSS_SHA_256', messageType: 'DIGEST', message: Buffer.alloc(32) })).rejects.toMatchObject({
      code: 'KMS.0207',
    });
    expect(await hsm().destroyKey(ref)).toBe(false);
  });
});

describe('an interrupted generation', () => {
  it('half a key pair (the public key gone) is destroyed and the pair made again when the key is generated again', async () => {
    const ref = newRef();
    await hsm().generateKey(ref, 'EC_P256', { fresh: true });
    const before = await hsm().keyPairs.publicKey(ref, 'EC_P256');
    side.withSession((session) => side.destroy(session, findObject(side, session, ref, 'public')));
    await hsm().generateKey(ref, 'EC_P256');
    side.withSession((session) => {
      expect(side.find(session, [{ type: pkcs11.CKA_ID, value: rawObjectId(ref) }, { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PRIVATE_KEY }])).toHaveLength(1);
      expect(side.find(session, [{ type: pkcs11.CKA_ID, value: rawObjectId(ref) }, { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_PUBLIC_KEY }])).toHaveLength(1);
    });
    const after = await hsm().keyPairs.publicKey(ref, 'EC_P256');
    expect(after.equals(before)).toBe(false);
    const message = Buffer.from('whole again');
    const signature = await hsm().signing.sign(ref, { spec: 'EC_P256', algorithm: 'ECDSA_SHA_256', messageType: 'RAW', message });
    expect(nodeVerify('sha256', message, spki(after), signature)).toBe(true);
  });

  it('a whole key pair is kept when the key is generated again (a retry never makes a second pair)', async () => {
    const ref = newRef();
    await hsm().generateKey(ref, 'EC_P256', { fresh: true });
    const before = await hsm().keyPairs.publicKey(ref, 'EC_P256');
    await hsm().generateKey(ref, 'EC_P256');
    expect((await hsm().keyPairs.publicKey(ref, 'EC_P256')).equals(before)).toBe(true);
    side.withSession((session) => expect(side.find(session, [{ type: pkcs11.CKA_ID, value: rawObjectId(ref) }])).toHaveLength(2));
  });
});

describe('metrics', () => {
  it("counts each role's calls by operation, and a signature or MAC that does not verify as no error", async () => {
    const keys = await makeKeys();
    const rsa = newRef();
    await hsm().generateKey(rsa, 'RSA_2048', { fresh: true, usage: 'ENCRYPT_DECRYPT' });
    const rsaPublic = spki(await hsm().keyPairs.publicKey(rsa, 'RSA_2048'));
    const before = await metrics();
    await useKeys(keys); // sign, derive, generate mac, verify mac
    const input = { spec: 'EC_P256', algorithm: 'ECDSA_SHA_256', messageType: 'RAW', message: Buffer.from('m') } as const;
    expect(await hsm().signing.verify(keys.signing, input, await hsm().signing.sign(keys.signing, input))).toBe(true);
    expect(await hsm().signing.verify(keys.signing, { ...input, message: Buffer.from('other') }, await hsm().signing.sign(keys.signing, input))).toBe(false);
    expect(await hsm().mac.verifyMac(keys.mac, 'HMAC_SHA_256', Buffer.from('m'), Buffer.alloc(32))).toBe(false);
    await hsm().keyPairs.publicKey(keys.signing, 'EC_P256');
    const ciphertext = publicEncrypt({ key: rsaPublic, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from('m'));
    expect((await hsm().asymmetricDecryption.decrypt(rsa, 'RSAES_OAEP_SHA_1', ciphertext)).toString()).toBe('m');
    const after = await metrics();
    const count = (name: string): number => after.delta(before, 'kms_hsm_call_duration_seconds_count', { function: name });
    expect({
      sign: count('sign'),
      verify: count('verify'),
      derive: count('derive'),
      generateMac: count('generate_mac'),
      verifyMac: count('verify_mac'),
      readPublicKey: count('read_public_key'),
      rsaDecrypt: count('rsa_decrypt'),
    }).toEqual({ sign: 3, verify: 2, derive: 1, generateMac: 1, verifyMac: 2, readPublicKey: 1, rsaDecrypt: 1 });
    expect(after.all('kms_hsm_call_errors_total')).toEqual(before.all('kms_hsm_call_errors_total'));
  });
});
