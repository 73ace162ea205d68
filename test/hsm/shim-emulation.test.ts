import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as pkcs11 from 'pkcs11js';
import { makeProbeToken, removeProbeToken, runLayoutProbe, startShimProbe, type GcmParameter, type ProbeToken, type ShimProbe } from '../helpers/shim-probe';
import { builtFipsShim, builtShim } from '../helpers/shim-service';
import { tokenLabelOf } from '../helpers/token-label';

/**
 * The PKCS#11 shim (bench/shim) playing the HSMs SoftHSM is not: the IV made by the token, the
 * CK_GCM_PARAMS layouts, a session limit, a vendor's name and the standard's bad-tag code. Each
 * setting runs in a child process of its own (the shim reads its environment when it is loaded),
 * through pkcs11js, or through a small C caller where pkcs11js cannot go (the 40-byte layout, the
 * length query); the FIPS-style build is also loaded here, by path, as a Jest project will.
 */

const KEY = randomBytes(32);
const AAD = Buffer.from('kms/project/key/v0');
const DATA = randomBytes(32);
const ZERO_IV = Buffer.alloc(12);

/** AES-256-GCM by node itself: ciphertext || 128-bit tag. */
function seal(iv: Buffer, data: Buffer, aad: Buffer = AAD): Buffer {
  const cipher = createCipheriv('aes-256-gcm', KEY, iv).setAAD(aad);
  return Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]);
}

function open(iv: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', KEY, iv).setAAD(AAD);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

const gcm = (iv: Buffer, type: GcmParameter['type'] = 'CK_PARAMS_AES_GCM_v240'): GcmParameter => ({ type, iv, aad: AAD });
const refused = (code: number) => expect.objectContaining({ code });

let token: ProbeToken;
let shim: string;
let fipsShim: string;
const probes: ShimProbe[] = [];

async function probe(env: Record<string, string>, module: string = shim): Promise<ShimProbe> {
  const started = await startShimProbe(module, token, env, KEY);
  probes.push(started);
  return started;
}

beforeAll(() => {
  token = makeProbeToken();
  shim = builtShim();
  fipsShim = builtFipsShim();
});

afterEach(async () => {
  await Promise.all(probes.splice(0).map((started) => started.stop()));
});

afterAll(() => {
  removeProbeToken(token);
});

describe('KMS_SHIM_GCM_IV=token-params: the token makes the IV and writes it into the parameters', () => {
  it('writes a fresh IV into the zeroed IV buffer, encrypts under it, and decrypts with the IV the caller passes', async () => {
    const hsm = await probe({ KMS_SHIM_GCM_IV: 'token-params' });
    const sealed = await hsm.call('encrypt', { parameter: gcm(Buffer.alloc(12)), data: DATA });
    expect(sealed.iv.equals(ZERO_IV)).toBe(false);
    expect(sealed.data).toEqual(seal(sealed.iv, DATA)); // the IV written back is the one used, and nothing is prepended
    expect(await hsm.call('decrypt', { parameter: gcm(sealed.iv), data: sealed.data })).toEqual(DATA);
    const iv = randomBytes(12); // decryption is as it always was
    expect(await hsm.call('decrypt', { parameter: gcm(iv), data: seal(iv, DATA) })).toEqual(DATA);
  });

  it('gives every encryption an IV of its own', async () => {
    const hsm = await probe({ KMS_SHIM_GCM_IV: 'token-params' });
    const first = await hsm.call('encrypt', { parameter: gcm(Buffer.alloc(12)), data: DATA });
    const second = await hsm.call('encrypt', { parameter: gcm(Buffer.alloc(12), 'CK_PARAMS_AES_GCM'), data: DATA });
    expect(first.iv.equals(second.iv)).toBe(false);
    expect(first.data.equals(second.data)).toBe(false);
  });

  it("refuses an IV of the caller's own, and an IV that is not 12 bytes, with CKR_MECHANISM_PARAM_INVALID", async () => {
    const hsm = await probe({ KMS_SHIM_GCM_IV: 'token-params' });
    const own = Buffer.alloc(12);
    own[11] = 1; // one non-zero byte is enough to be the caller's
    await expect(hsm.call('encrypt', { parameter: gcm(own), data: DATA })).rejects.toEqual(refused(pkcs11.CKR_MECHANISM_PARAM_INVALID));
    await expect(hsm.call('encrypt', { parameter: gcm(Buffer.alloc(16)), data: DATA })).rejects.toEqual(refused(pkcs11.CKR_MECHANISM_PARAM_INVALID));
  });
});

describe('KMS_SHIM_GCM_IV=token-output: the token makes the IV and returns it before the ciphertext', () => {
  it('answers IV || ciphertext || tag, 12 bytes more in the length query and in CKR_BUFFER_TOO_SMALL, and decrypts with the IV given', () => {
    const answer = runLayoutProbe(shim, token, { KMS_SHIM_GCM_IV: 'token-output' }, 'token-output', { key: KEY, iv: ZERO_IV, aad: AAD, data: DATA, ciphertext: Buffer.alloc(0) });
    const length = 12 + DATA.length + 16;
    expect(answer).toMatchObject({
      encryptInit: 0,
      query: { rv: 0, length },
      short: { rv: pkcs11.CKR_BUFFER_TOO_SMALL, length },
      almost: { rv: pkcs11.CKR_BUFFER_TOO_SMALL, length },
      encrypt: { rv: 0, length },
      decryptInit: 0,
      decrypt: 0,
      plaintext: DATA.toString('hex'),
    });
    const output = Buffer.from((answer as { encrypt: { output: string } }).encrypt.output, 'hex');
    const iv = output.subarray(0, 12);
    expect(iv.equals(ZERO_IV)).toBe(false);
    expect(output.subarray(12)).toEqual(seal(iv, DATA));
  });

  it("leaves the caller's IV buffer zero, and refuses an IV of the caller's own", async () => {
    const hsm = await probe({ KMS_SHIM_GCM_IV: 'token-output' });
    const sealed = await hsm.call('encrypt', { parameter: gcm(Buffer.alloc(12)), data: DATA });
    expect(sealed.iv).toEqual(ZERO_IV);
    expect(sealed.data).toHaveLength(12 + DATA.length + 16);
    expect(open(sealed.data.subarray(0, 12), sealed.data.subarray(12))).toEqual(DATA);
    await expect(hsm.call('encrypt', { parameter: gcm(randomBytes(12)), data: DATA })).rejects.toEqual(refused(pkcs11.CKR_MECHANISM_PARAM_INVALID));
  });
});

describe('KMS_SHIM_GCM_PARAMS: which CK_GCM_PARAMS layout the module takes', () => {
  const iv = randomBytes(12);
  const input = { key: KEY, iv, aad: AAD, data: DATA, ciphertext: seal(iv, DATA) };
  const works = { encryptInit: 0, encrypt: 0, ciphertext: seal(iv, DATA).toString('hex'), decryptInit: 0, decrypt: 0, plaintext: DATA.toString('hex') };
  const refusedLayout = { encryptInit: pkcs11.CKR_MECHANISM_PARAM_INVALID, decryptInit: pkcs11.CKR_MECHANISM_PARAM_INVALID };

  it('v3: takes the 40-byte layout and hands it to SoftHSM as the 48-byte one (AAD and tag intact); refuses the 48-byte one', () => {
    expect(runLayoutProbe(shim, token, { KMS_SHIM_GCM_PARAMS: 'v3' }, 'layouts', input)).toMatchObject({ v3: works, v240: refusedLayout });
  });

  it("v240: takes the 48-byte layout and refuses the 40-byte one; any (the default) leaves the 40-byte one to SoftHSM's CKR_ARGUMENTS_BAD", () => {
    expect(runLayoutProbe(shim, token, { KMS_SHIM_GCM_PARAMS: 'v240' }, 'layouts', input)).toMatchObject({ v3: refusedLayout, v240: works });
    const asSoftHsm = { encryptInit: pkcs11.CKR_ARGUMENTS_BAD, decryptInit: pkcs11.CKR_ARGUMENTS_BAD };
    expect(runLayoutProbe(shim, token, {}, 'layouts', input)).toMatchObject({ v3: asSoftHsm, v240: works });
  });

  it('pkcs11js 2.1.7 builds the 48-byte layout for both its GCM types: v3 refuses both, v240 takes both', async () => {
    const v3 = await probe({ KMS_SHIM_GCM_PARAMS: 'v3' });
    for (const type of ['CK_PARAMS_AES_GCM_v240', 'CK_PARAMS_AES_GCM'] as const) {
      await expect(v3.call('decrypt', { parameter: gcm(iv, type), data: seal(iv, DATA) })).rejects.toEqual(refused(pkcs11.CKR_MECHANISM_PARAM_INVALID));
    }
    const v240 = await probe({ KMS_SHIM_GCM_PARAMS: 'v240' });
    for (const type of ['CK_PARAMS_AES_GCM_v240', 'CK_PARAMS_AES_GCM'] as const) {
      expect(await v240.call('decrypt', { parameter: gcm(iv, type), data: seal(iv, DATA) })).toEqual(DATA);
    }
  });
});

describe('KMS_SHIM_MAX_SESSIONS: a token that allows so many sessions at once', () => {
  // The probe holds one read-write session of its own.
  it('refuses the session beyond the limit with CKR_SESSION_COUNT, and C_GetTokenInfo tells the limit and the count', async () => {
    const hsm = await probe({ KMS_SHIM_MAX_SESSIONS: '3' });
    expect(await hsm.call('openSessions', { count: 5, rw: false })).toEqual({ opened: 2, ckr: pkcs11.CKR_SESSION_COUNT });
    expect(await hsm.call('tokenInfo', {})).toEqual({ maxSessionCount: 3, sessionCount: 3, rwSessionCount: 1 });
  });

  it('C_CloseSession frees a place', async () => {
    const hsm = await probe({ KMS_SHIM_MAX_SESSIONS: '3' });
    await hsm.call('openSessions', { count: 2, rw: false });
    await hsm.call('closeSession', {});
    expect(await hsm.call('tokenInfo', {})).toEqual({ maxSessionCount: 3, sessionCount: 2, rwSessionCount: 1 });
    expect(await hsm.call('openSessions', { count: 2, rw: true })).toEqual({ opened: 1, ckr: pkcs11.CKR_SESSION_COUNT });
    expect(await hsm.call('tokenInfo', {})).toEqual({ maxSessionCount: 3, sessionCount: 3, rwSessionCount: 2 });
  });

  it('C_CloseAllSessions and C_Finalize free them all', async () => {
    const hsm = await probe({ KMS_SHIM_MAX_SESSIONS: '3' });
    await hsm.call('openSessions', { count: 2, rw: true });
    await hsm.call('closeAllSessions', {});
    expect(await hsm.call('tokenInfo', {})).toEqual({ maxSessionCount: 3, sessionCount: 0, rwSessionCount: 0 });
    expect(await hsm.call('openSessions', { count: 4, rw: false })).toEqual({ opened: 3, ckr: pkcs11.CKR_SESSION_COUNT });
    await hsm.call('reinitialize', {}); // C_Finalize, C_Initialize, and the probe's own session again
    expect(await hsm.call('tokenInfo', {})).toEqual({ maxSessionCount: 3, sessionCount: 1, rwSessionCount: 1 });
    expect(await hsm.call('openSessions', { count: 2, rw: false })).toEqual({ opened: 2 });
  });
});

describe('KMS_SHIM_MANUFACTURER and KMS_SHIM_BAD_TAG_RV: a vendor of its own, answering as the standard says', () => {
  it("replaces C_GetInfo's manufacturer and library description; without it, SoftHSM's pass through", async () => {
    const vendor = await probe({ KMS_SHIM_MANUFACTURER: 'Example Vendor HSM' });
    expect(await vendor.call('info', {})).toEqual({ manufacturerID: 'Example Vendor HSM'.padEnd(32), libraryDescription: 'Example Vendor HSM'.padEnd(32) });
    const plain = await probe({});
    expect((await plain.call('info', {})).manufacturerID).toMatch(/^SoftHSM/);
  });

  it("answers a tag that does not verify with the CKR asked for instead of SoftHSM's CKR_GENERAL_ERROR", async () => {
    const iv = randomBytes(12);
    const tampered = seal(iv, DATA);
    tampered[tampered.length - 1]! ^= 1;
    const standard = await probe({ KMS_SHIM_BAD_TAG_RV: '0x40' });
    await expect(standard.call('decrypt', { parameter: gcm(iv), data: tampered })).rejects.toEqual(refused(pkcs11.CKR_ENCRYPTED_DATA_INVALID));
    expect(await standard.call('decrypt', { parameter: gcm(iv), data: seal(iv, DATA) })).toEqual(DATA);
    const plain = await probe({});
    await expect(plain.call('decrypt', { parameter: gcm(iv), data: tampered })).rejects.toEqual(refused(pkcs11.CKR_GENERAL_ERROR));
  });
});

describe('libkms-fips-shim.so: the same shim with FIPS-style defaults', () => {
  it('loaded by path in this process: makes and writes back the IV, takes only the 48-byte layout, names itself, answers a bad tag with 0x40, no session limit', () => {
    const lib = new pkcs11.PKCS11();
    lib.load(fipsShim);
    lib.C_Initialize();
    try {
      expect(lib.C_GetInfo().manufacturerID).toBe('KMS test FIPS-style HSM'.padEnd(32));
      const slot = lib.C_GetSlotList(true).find((candidate) => tokenLabelOf(lib, candidate) === token.label)!;
      const sessions = Array.from({ length: 8 }, () => lib.C_OpenSession(slot, pkcs11.CKF_SERIAL_SESSION | pkcs11.CKF_RW_SESSION));
      const session = sessions[0]!;
      lib.C_Login(session, pkcs11.CKU_USER, token.pin);
      const key = lib.C_CreateObject(session, [
        { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
        { type: pkcs11.CKA_KEY_TYPE, value: pkcs11.CKK_AES },
        { type: pkcs11.CKA_TOKEN, value: false },
        { type: pkcs11.CKA_ENCRYPT, value: true },
        { type: pkcs11.CKA_DECRYPT, value: true },
        { type: pkcs11.CKA_VALUE, value: KEY },
      ]);
      const mechanism = (iv: Buffer): pkcs11.Mechanism => {
        const parameter: pkcs11.AesGCM = { type: pkcs11.CK_PARAMS_AES_GCM_v240, iv, aad: AAD, ivBits: 96, tagBits: 128 };
        return { mechanism: pkcs11.CKM_AES_GCM, parameter };
      };

      const iv = Buffer.alloc(12);
      lib.C_EncryptInit(session, mechanism(iv), key);
      const sealed = Buffer.from(lib.C_Encrypt(session, DATA, Buffer.alloc(DATA.length + 16)));
      expect(iv.equals(ZERO_IV)).toBe(false);
      expect(sealed).toEqual(seal(iv, DATA));
      expect(() => lib.C_EncryptInit(session, mechanism(randomBytes(12)), key)).toThrow(refused(pkcs11.CKR_MECHANISM_PARAM_INVALID));

      sealed[0]! ^= 1;
      lib.C_DecryptInit(session, mechanism(iv), key);
      expect(() => lib.C_Decrypt(session, sealed, Buffer.alloc(sealed.length))).toThrow(refused(pkcs11.CKR_ENCRYPTED_DATA_INVALID));
    } finally {
      lib.C_Finalize();
      lib.close();
    }
    const iv = randomBytes(12);
    const layouts = runLayoutProbe(fipsShim, token, {}, 'layouts', { key: KEY, iv, aad: AAD, data: DATA, ciphertext: seal(iv, DATA) });
    expect(layouts).toMatchObject({ v3: { encryptInit: pkcs11.CKR_MECHANISM_PARAM_INVALID }, v240: { decrypt: 0 } });
  });

  it('still lets the environment override its defaults', async () => {
    const hsm = await probe({ KMS_SHIM_GCM_IV: 'caller', KMS_SHIM_MANUFACTURER: 'Overridden' }, fipsShim);
    const iv = randomBytes(12);
    expect(await hsm.call('encrypt', { parameter: gcm(Buffer.from(iv)), data: DATA })).toEqual({ iv, data: seal(iv, DATA) });
    expect((await hsm.call('info', {})).manufacturerID).toBe('Overridden'.padEnd(32));
  });
});

describe('a setting the shim does not know', () => {
  it('fails C_GetFunctionList rather than guess', async () => {
    await expect(probe({ KMS_SHIM_GCM_IV: 'sometimes' })).rejects.toThrow(/probe did not start|probe exited/);
  });
});
