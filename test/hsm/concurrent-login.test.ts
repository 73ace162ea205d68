import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ShimServiceExited, startShimService, type ShimService } from '../helpers/shim-service';

/**
 * SoftHSM's C_Login rewrites the token's file, and answers CKR_GENERAL_ERROR when it reads that file
 * while another process of the service rewrites it: several processes start at once (a cluster, the
 * command-line tool beside it), and each re-initialisation logs in again. Injected here through the
 * fault shim, exactly where the race would strike, and on every run, which the race itself is not
 * (the cluster test of a fresh data directory meets it now and then).
 */
const GENERAL_ERROR = '0x5 C_Login\n';
const started: ShimService[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((service) => service.stop()));
});

async function start(failFromStart?: string): Promise<ShimService> {
  const service = await startShimService({}, { failFromStart });
  started.push(service);
  return service;
}

describe('a login that meets another process\'s', () => {
  it('at start-up: tried again, and the service starts and serves', async () => {
    const shim = await start(GENERAL_ERROR.repeat(3));
    expect(shim.failurePending()).toBe(false); // all three refusals happened
    expect((await shim.kms.call('create-key', { key_alias: 'after-login-race' })).status).toBe(200);
  });

  it('after a re-initialisation: tried again, and the request that needed the recovery still succeeds', async () => {
    const shim = await start();
    const keyId = (await shim.kms.call('create-key', { key_alias: 'recovered' })).body.key_info.key_id;
    // A device error on the next crypto call, then the first login of the re-initialised module refused.
    writeFileSync(shim.failFile, `0x30\n${GENERAL_ERROR}`);
    expect((await shim.kms.call('create-datakey', { key_id: keyId })).status).toBe(200);
    expect(shim.failurePending()).toBe(false);
    expect(await shim.logged('re-initialising the module')).toBe(true);
    expect(shim.output()).not.toContain('HSM re-initialisation failed');
  });

  it('a refused PIN is not tried again: start-up stops at the first refusal with one line', async () => {
    const failure = await start('0xa0 C_Login\n0xa0 C_Login\n').catch((error: unknown) => error); // CKR_PIN_INCORRECT, twice
    if (!(failure instanceof ShimServiceExited)) throw new Error(`the service started: ${String(failure)}`);
    expect(failure.message).toContain('PKCS#11 login refused: CKR_PIN_INCORRECT');
    // The shim used the first line only: no second login was made.
    const failFile = readFileSync(failure.failFile, 'utf8');
    rmSync(path.dirname(failure.failFile), { recursive: true, force: true }); // the service's directory, left behind by its failed start
    expect(failFile).toBe('0xa0 C_Login\n');
  });
});
