import { readFileSync } from 'node:fs';
import { expectKmsError } from '../helpers/client';
import { sdkClient } from '../helpers/sdk-client';
import { useTestService } from '../helpers/service';

/** gen-random: random bytes from the HSM's generator, random_data_length in bits as a JSON string. */

const t = useTestService();
const kms = t.client('project-a');

describe('gen-random', () => {
  it.each([
    ['8', 1],
    ['512', 64],
    ['8192', 1024],
  ])('returns %s bits as %i bytes of upper-case hex, from the HSM', async (bits, bytes) => {
    const random = jest.spyOn(t.service.hsm, 'random');
    try {
      const response = await kms.call('gen-random', { random_data_length: bits });
      expect(response.status).toBe(200);
      expect(Object.keys(response.body)).toEqual(['random_data']);
      expect(response.body.random_data).toMatch(new RegExp(`^[0-9A-F]{${bytes * 2}}$`));
      // The bytes are the HSM generator's (C_GenerateRandom): asked once, for exactly this many.
      expect(random.mock.calls).toEqual([[bytes]]);
    } finally {
      random.mockRestore();
    }
  });

  it('answers differently every time', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5; i++) seen.add((await kms.call('gen-random', { random_data_length: '256' })).body.random_data);
    expect(seen.size).toBe(5);
  });

  it.each([
    ['0', 'KMS.1801'],
    ['4', 'KMS.1801'],
    ['8200', 'KMS.1801'],
    ['99999', 'KMS.1801'],
    ['abc', 'KMS.1801'],
    ['-8', 'KMS.1801'],
    ['12', 'KMS.1802'],
    ['8191', 'KMS.1802'],
  ])('refuses random_data_length %j with %s', async (bits, code) => {
    expectKmsError(await kms.call('gen-random', { random_data_length: bits }), 400, code);
  });

  it('refuses a JSON number: the SDK model sends a string (KMS.1801)', async () => {
    expectKmsError(await kms.call('gen-random', { random_data_length: 512 }), 400, 'KMS.1801');
  });

  it('says what it accepts, beside the catalogue text', async () => {
    const response = await kms.call('gen-random', { random_data_length: '4' });
    expect(response.body.error_msg).toContain('8 to 8192 bits');
  });

  it('refuses a request without random_data_length (KMS.0204) and a malformed sequence (KMS.0206)', async () => {
    expectKmsError(await kms.call('gen-random', {}), 400, 'KMS.0204');
    expectKmsError(await kms.call('gen-random', { random_data_length: '64', sequence: 'x' }), 400, 'KMS.0206');
  });

  it('needs kms:cmk:generate (403 KMS.0307 otherwise), and names no key in the audit record', async () => {
    expectKmsError(await t.client('project-a', ['kms:cmk:crypto', 'kms:dek:*']).call('gen-random', { random_data_length: '64' }), 403, 'KMS.0307');
    const allowed = await t.client('project-a', ['kms:cmk:generate']).call('gen-random', { random_data_length: '64' });
    expect(allowed.status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    const record = readFileSync(t.config.auditLogPath, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .find((line) => line.request_id === allowed.headers.get('x-request-id'));
    expect(record).toMatchObject({ action: 'gen-random', permission: 'kms:cmk:generate', key_id: null, status: 200, result: 'OK' });
    // The random bytes are a secret the caller may use as key material: never logged or audited.
    expect(readFileSync(t.config.auditLogPath, 'utf8') + t.logs.text).not.toContain(allowed.body.random_data);
  });

  it('works through the official SDK, as GenRandomRequestBody sends it', async () => {
    const issued = await t.service.credentials.createAccessKey({ projectId: 'project-a', actions: ['kms:cmk:generate'] });
    const sdk = sdkClient({ endpoint: t.service.url, projectId: 'project-a', ak: issued.access_key, sk: issued.secret_key });
    const response = await sdk.call('gen-random', { random_data_length: '512', sequence: '919c82d4-8046-4722-9094-35c3c6524cff' });
    expect(response.status).toBe(200);
    expect(response.body.random_data).toMatch(/^[0-9A-F]{128}$/);
    expect(await sdk.call('gen-random', { random_data_length: '513' })).toMatchObject({ status: 400, errorCode: 'KMS.1802' });
  });
});
