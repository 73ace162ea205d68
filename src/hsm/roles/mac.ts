import { timingSafeEqual } from 'node:crypto';
import type { MacAlgorithm, MaterialRef, MessageAuthentication } from '../hsm';
import { MAC_MECHANISMS } from '../key-kinds/hmac';
import type { KeyObjects } from '../key-objects';
import type { Pkcs11Profile } from '../profiles';
import { signOn } from './calls';

/**
 * The {@link MessageAuthentication} role: HMAC with the secret key in the token. A MAC is checked
 * by making it again in the token and comparing in the service, in constant time, not by
 * C_Verify: NSS's softoken answers a MAC that does not match with whatever error its thread last
 * met (CKR_DOMAIN_PARAMS_INVALID after the start-up's curve probe, for one), which no caller can
 * tell from a failure of the module.
 */
export class Pkcs11Mac implements MessageAuthentication {
  constructor(
    private readonly keys: KeyObjects,
    private readonly profile: Pkcs11Profile,
  ) {}

  generateMac(ref: MaterialRef, algorithm: MacAlgorithm, message: Buffer): Promise<Buffer> {
    const mechanism = { mechanism: MAC_MECHANISMS[algorithm].type };
    return this.keys
      .withObject(ref, 'secret', 'generate mac', (session, key) => signOn(session, mechanism, key, message, this.profile.cryptoCalls))
      .then((mac) => Buffer.from(mac));
  }

  async verifyMac(ref: MaterialRef, algorithm: MacAlgorithm, message: Buffer, mac: Buffer): Promise<boolean> {
    const mechanism = { mechanism: MAC_MECHANISMS[algorithm].type };
    const expected = await this.keys.withObject(ref, 'secret', 'verify mac', (session, key) => signOn(session, mechanism, key, message, this.profile.cryptoCalls));
    // The length is the algorithm's, public: only the bytes are compared in constant time.
    return expected.length === mac.length && timingSafeEqual(expected, mac);
  }
}
