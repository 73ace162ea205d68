/**
 * A key pair's generation has a deadline of its own, longer than a call's: an RSA key pair is a
 * search for primes (seconds for RSA-4096 on a loaded machine, past the 5 s call deadline), and a
 * generation cut short at the call deadline answers 503 while the module goes on making the key.
 * Here the call deadline is the shortest the service takes (10 ms), far below any RSA generation;
 * SoftHSM's signing calls answer inline (its profile's `sync` calls), so they are not raced.
 */
import { createPublicKey, randomUUID } from 'node:crypto';
import { useTestService } from '../helpers/service';

const t = useTestService({ env: { KMS_PKCS11_CALL_TIMEOUT_MS: '10' } });

it('an RSA-3072 key pair is made within the generation deadline, not the call deadline', async () => {
  const ref = { keyId: randomUUID(), version: 0 };
  await t.service.hsm.generateKey(ref, 'RSA_3072', { fresh: true });
  const publicKey = createPublicKey({ key: await t.service.hsm.keyPairs.publicKey(ref, 'RSA_3072'), format: 'der', type: 'spki' });
  expect(publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
});
