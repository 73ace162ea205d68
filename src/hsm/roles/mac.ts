import type { MacAlgorithm, MaterialRef, MessageAuthentication } from '../hsm';
import { MAC_MECHANISMS } from '../key-kinds/hmac';
import type { KeyObjects } from '../key-objects';
import type { Pkcs11Profile } from '../profiles';
import { signOn, verifyOn } from './calls';

/** The {@link MessageAuthentication} role: HMAC with the secret key in the token; C_Verify compares, in the token. */
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

  verifyMac(ref: MaterialRef, algorithm: MacAlgorithm, message: Buffer, mac: Buffer): Promise<boolean> {
    const mechanism = { mechanism: MAC_MECHANISMS[algorithm].type };
    return this.keys.withObject(ref, 'secret', 'verify mac', (session, key) => verifyOn(session, mechanism, key, message, mac, this.profile.cryptoCalls));
  }
}
