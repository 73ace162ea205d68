import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { DEFAULT_SOFTHSM_MODULE } from '../../src/config';
import { createTokenIfMissing, finalizeQuietly, loadModule, tokenSlots } from '../../src/hsm/token-setup';
import { removeSoftHsmToken } from '../helpers/softhsm-tokens';

/**
 * Every process of the run shares one SoftHSM token directory, and test files remove their tokens
 * when done. A process that initialised SoftHSM before such a removal still lists that token, and
 * reading it answers CKR_GENERAL_ERROR: looking up the token just initialised must pass over it
 * (CI once failed a service's first start on exactly this, after C_InitToken).
 */
describe('finding a token among the slots', () => {
  const quiet = pino({ level: 'silent' });
  const label = (role: string) => `setup-${role}-${randomBytes(6).toString('hex')}`;
  const removed = label('gone');
  const wanted = label('kept');

  beforeAll(() => {
    for (const tokenLabel of [removed, wanted]) createTokenIfMissing({ modulePath: DEFAULT_SOFTHSM_MODULE, tokenLabel, pin: '1234', logger: quiet });
  });

  afterAll(() => removeSoftHsmToken(wanted));

  it('passes over a token another process removed since C_Initialize only when told to', () => {
    const module = loadModule(DEFAULT_SOFTHSM_MODULE);
    try {
      expect(tokenSlots(module, wanted, true)).toHaveLength(1);
      removeSoftHsmToken(removed);
      expect(() => tokenSlots(module, wanted)).toThrow('CKR_GENERAL_ERROR');
      const found = tokenSlots(module, wanted, true);
      expect(found).toHaveLength(1);
      expect(found[0]!.getToken().label).toBe(wanted);
    } finally {
      finalizeQuietly(module);
    }
  });
});
