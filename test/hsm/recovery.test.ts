import { expectKmsError } from '../helpers/client';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';

/**
 * Every test runs with both ways of calling the HSM's crypto functions: on libuv worker threads
 * (async, any vendor's module) and inline (sync, the embedded SoftHSM's default).
 */
describe.each(['async', 'sync'])('with KMS_PKCS11_CRYPTO_CALLS=%s', (cryptoCalls) => {
  const t = useTestService({ env: { KMS_PKCS11_CRYPTO_CALLS: cryptoCalls } });
  const kms = t.client();
  let side: SideChannel;
  let keyId: string;

  beforeAll(async () => {
    side = new SideChannel(t.config.hsm);
    keyId = (await kms.call('create-key', { key_alias: 'recovery' })).body.key_info.key_id;
  });

  /** A data key round trip: proves the service's sessions, login and key handle all work. */
  async function roundTrip(): Promise<void> {
    const created = await kms.call('create-datakey', { key_id: keyId });
    expect(created.status).toBe(200);
    const opened = await kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' });
    expect(opened.status).toBe(200);
    expect(opened.body.data_key).toBe(created.body.plain_text);
  }

  describe('the HSM layer recovers from what real HSMs do', () => {
    it('replaces sessions the HSM closed (and logs back in) without failing a request', async () => {
      await roundTrip();
      side.closeAllSessions();
      await roundTrip();
      expect(t.logs.text).toContain('HSM session lost');
    });

    it('re-initialises the module after it was finalised underneath the service', async () => {
      await roundTrip();
      side.finalize();
      await roundTrip();
      expect(t.logs.text).toContain('re-initialising the module');
      // Keys created after the recovery work too: the slot and login were found again.
      const created = await kms.call('create-key', { key_alias: 'after-recovery' });
      expect(created.status).toBe(200);
    });

    it('shows in its state the recoveries, the last failure and its sessions', async () => {
      await roundTrip();
      const before = t.service.hsm.state();
      expect(before.sessions).toMatchObject({ size: t.config.hsmSessions, busy: 0, abandoned: 0 });
      expect(before.sessions.free).toBeGreaterThan(0);
      expect(before.waiters).toBe(0);
      side.finalize();
      await roundTrip();
      const after = t.service.hsm.state();
      expect(after.recoveries).toBe(before.recoveries + 1);
      expect(after.rereads).toBe(before.rereads);
      expect(after.lastError?.cause).toMatch(/^CKR_/);
      expect(Date.parse(after.lastError!.at)).toBeGreaterThan(0);
      expect(after.backingOff).toBe(false);
      expect(after.sessions.busy).toBe(0);
    });

    it('treats a key whose object another process destroyed as gone (404), not as a server error', async () => {
      const doomed = (await kms.call('create-key', { key_alias: 'destroyed-elsewhere' })).body.key_info.key_id;
      expect((await kms.call('create-datakey', { key_id: doomed })).status).toBe(200); // handle now cached
      side.withSession((session) => side.destroy(session, side.findKey(session, { keyId: doomed, version: 0 })!));
      expectKmsError(await kms.call('create-datakey', { key_id: doomed }), 404, 'KMS.0207');
      // Other keys are unaffected.
      await roundTrip();
    });

    it('stays sound under sustained concurrent HSM calls', async () => {
      // Asynchronously these run on several threads: without CKF_OS_LOCKING_OK at C_Initialize,
      // SoftHSM ran unlocked and corrupted its heap here.
      const ref = { keyId, version: 0 };
      const aad = Buffer.from('load');
      for (let wave = 0; wave < 40; wave++) {
        const plaintexts = await Promise.all(Array.from({ length: 256 }, () => t.service.hsm.random(32)));
        const sealed = await Promise.all(plaintexts.map((plaintext) => t.service.hsm.symmetric.encrypt(ref, plaintext, aad)));
        const opened = await Promise.all(sealed.map((data) => t.service.hsm.symmetric.decrypt(ref, data, aad)));
        expect(opened.every((plaintext, i) => plaintext.equals(plaintexts[i]!))).toBe(true);
      }
      // About 20,000 HSM calls: seconds on SoftHSM, five times that on NSS's softoken.
    }, 120_000);

    it('serves many concurrent requests through a small pool of sessions', async () => {
      const results = await Promise.all(Array.from({ length: 64 }, () => kms.call('create-datakey', { key_id: keyId })));
      expect(results.map((response) => response.status)).toEqual(Array(64).fill(200));
      expect(new Set(results.map((response) => response.body.plain_text)).size).toBe(64);
    });
  });
});
