import { writeFileSync } from 'node:fs';
import { withTrailerRecomputed } from '../helpers/blob';
import { expectKmsError } from '../helpers/client';
import { startShimService, type ShimService } from '../helpers/shim-service';

/**
 * What other vendors' HSMs do differently, emulated by the shim on a real SoftHSM token (see
 * bench/shim/delay-shim.c), and the service configured for it by its capabilities alone: an HSM
 * that makes the GCM IV itself, and one that allows fewer sessions than the pool is configured for.
 */

/** Creates a key and a data key, and opens the data key again. */
async function roundTrip(shim: ShimService, alias: string): Promise<void> {
  const keyId = (await shim.kms.call('create-key', { key_alias: alias })).body.key_info.key_id;
  const created = await shim.kms.call('create-datakey', { key_id: keyId });
  expect(created.status).toBe(200);
  const opened = await shim.kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' });
  expect(opened.status).toBe(200);
  expect(opened.body.data_key).toBe(created.body.plain_text);
}

/** The IV of a data-key blob (bytes 4 to 15: see "The ciphertext blob" in the README). */
function ivOf(cipherText: string): string {
  return cipherText.slice(8, 32);
}

describe('an HSM that makes the GCM IV itself', () => {
  it.each([
    ['writes it into the parameters', 'token-params'],
    ['puts it in front of the ciphertext', 'token-output'],
  ])('that %s: configured so, the service seals and opens data keys, each with an IV of its own', async (_how, mode) => {
    const shim = await startShimService({ KMS_SHIM_GCM_IV: mode, KMS_SHIM_MANUFACTURER: 'Example FIPS HSM', KMS_SHIM_BAD_TAG_RV: '0x40', KMS_PKCS11_GCM_IV: mode });
    try {
      expect(await shim.logged(`"gcmIv":"${mode}"`)).toBe(true);
      expect(await shim.logged('"profile":"generic"')).toBe(true);
      await roundTrip(shim, 'fips');
      const keyId = (await shim.kms.call('create-key', { key_alias: 'ivs' })).body.key_info.key_id;
      const blobs = await Promise.all([1, 2, 3].map(() => shim.kms.call('create-datakey', { key_id: keyId })));
      const texts = blobs.map((response) => response.body.cipher_text as string);
      expect(new Set(texts.map(ivOf)).size).toBe(3);
      // A tag that does not verify in the HSM is the caller's fault (400 KMS.2201), as on any module.
      const tampered = Buffer.from(texts[0]!, 'hex');
      tampered[16] = tampered[16]! ^ 0x01;
      const refused = await shim.kms.call('decrypt-datakey', {
        key_id: keyId,
        cipher_text: withTrailerRecomputed(tampered).toString('hex'),
        datakey_cipher_length: '32',
      });
      expectKmsError(refused, 400, 'KMS.2201');
    } finally {
      await shim.stop();
    }
  });

  it('refuses to start with the caller making IVs, in one line naming the setting', async () => {
    const failed = await startShimService({ KMS_SHIM_GCM_IV: 'token-params' }).then(
      async (shim) => {
        await shim.stop();
        return 'started';
      },
      (error: Error) => error.message,
    );
    expect(failed).toMatch(/kms: AES-GCM encryption fails with KMS_PKCS11_GCM_IV=caller.*CKR_MECHANISM_PARAM_INVALID/);
    expect(failed).toContain('token-params or token-output');
  });

  it('refuses to start when told the HSM makes IVs but it writes none (an IV would be used twice)', async () => {
    const failed = await startShimService({ KMS_PKCS11_GCM_IV: 'token-params' }).then(
      async (shim) => {
        await shim.stop();
        return 'started';
      },
      (error: Error) => error.message,
    );
    expect(failed).toMatch(/kms: AES-GCM encryption fails with KMS_PKCS11_GCM_IV=token-params/);
  });
});

describe('an HSM with fewer sessions than the pool is configured for', () => {
  it('that says so in its token info: the pool keeps to it, and concurrent requests all succeed', async () => {
    const shim = await startShimService({ KMS_SHIM_MAX_SESSIONS: '2', KMS_PKCS11_SESSIONS: '8' });
    try {
      expect(await shim.logged('the token allows fewer sessions than configured')).toBe(true);
      const keyId = (await shim.kms.call('create-key', { key_alias: 'limited' })).body.key_info.key_id;
      const answers = await Promise.all(Array.from({ length: 24 }, () => shim.kms.call('create-datakey', { key_id: keyId })));
      expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
    } finally {
      await shim.stop();
    }
  });

  it('that only answers CKR_SESSION_COUNT: the pool keeps the sessions it has, and requests wait for them', async () => {
    const shim = await startShimService({ KMS_PKCS11_SESSIONS: '8' });
    try {
      const keyId = (await shim.kms.call('create-key', { key_alias: 'refusing' })).body.key_info.key_id;
      writeFileSync(shim.failFile, '0xb1 always C_OpenSession\n'); // CKR_SESSION_COUNT
      const answers = await Promise.all(Array.from({ length: 24 }, () => shim.kms.call('create-datakey', { key_id: keyId })));
      expect(answers.map((answer) => answer.status)).toEqual(answers.map(() => 200));
      expect(await shim.logged('the token refused another session (CKR_SESSION_COUNT)')).toBe(true);
    } finally {
      await shim.stop();
    }
  });
});
