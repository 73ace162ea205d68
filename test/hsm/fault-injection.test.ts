import { expectKmsError } from '../helpers/client';
import { startShimService, type ShimService } from '../helpers/shim-service';

/**
 * The service behind the fault-injecting PKCS#11 shim (bench/shim), which forwards to SoftHSM and
 * fails calls with a chosen CKR while a file says so: what a real HSM's errors do to requests.
 */
let shim: ShimService;
let keyId: string;

beforeAll(async () => {
  shim = await startShimService();
  keyId = (await shim.kms.call('create-key', { key_alias: 'faults' })).body.key_info.key_id;
}, 30_000);

afterAll(async () => {
  await shim.stop();
});

describe('HSM failures, injected under the service', () => {
  it('a device error on one call: the module is re-initialised and the request still succeeds', async () => {
    shim.fail(0x30); // CKR_DEVICE_ERROR
    const response = await shim.kms.call('create-datakey', { key_id: keyId });
    expect(response.status).toBe(200);
    expect(shim.failurePending()).toBe(false); // the failure did happen
    expect(await shim.logged('re-initialising the module')).toBe(true);
  });

  it('a lost session on one call: the session is replaced and the request still succeeds', async () => {
    shim.fail(0xb3); // CKR_SESSION_HANDLE_INVALID
    const created = await shim.kms.call('create-datakey', { key_id: keyId });
    expect(created.status).toBe(200);
    expect(shim.failurePending()).toBe(false);
    expect(await shim.logged('HSM session lost')).toBe(true);
  });

  it('a device that stays broken: 503 KMS.0104 with no HSM detail, and service again once it is back', async () => {
    shim.fail(0x30, 'always');
    const response = await shim.kms.call('create-datakey', { key_id: keyId });
    expectKmsError(response, 503, 'KMS.0104');
    expect(JSON.stringify(response.body)).not.toMatch(/CKR|0x30|device/i);
    shim.clearFailure();
    expect((await shim.kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
  });

  it('an unexpected HSM error: 500 KMS.0103, detail in the log only', async () => {
    shim.fail(0x06); // CKR_FUNCTION_FAILED
    const response = await shim.kms.call('create-datakey-without-plaintext', { key_id: keyId });
    expectKmsError(response, 500, 'KMS.0103');
    expect(JSON.stringify(response.body)).not.toContain('CKR_');
    expect(await shim.logged('CKR_FUNCTION_FAILED')).toBe(true);
  });

  it('a bad-tag answer on decrypt is the caller\'s bad ciphertext (400 KMS.2201), not a server error', async () => {
    const created = await shim.kms.call('create-datakey', { key_id: keyId });
    shim.fail(0x40); // CKR_ENCRYPTED_DATA_INVALID
    expectKmsError(await shim.kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' }), 400, 'KMS.2201');
    expect((await shim.kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' })).status).toBe(200);
  });

  it('the same answer from any call but C_Decrypt is the device\'s fault (500), not bad ciphertext', async () => {
    const created = await shim.kms.call('create-datakey', { key_id: keyId });
    shim.fail(0x40, 'C_DecryptInit'); // CKR_ENCRYPTED_DATA_INVALID, where no ciphertext was read yet
    expectKmsError(await shim.kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' }), 500, 'KMS.0103');
    expect(shim.failurePending()).toBe(false);
    expect((await shim.kms.call('decrypt-datakey', { key_id: keyId, cipher_text: created.body.cipher_text, datakey_cipher_length: '32' })).status).toBe(200);
  });
});
