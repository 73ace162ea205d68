import * as graphene from 'graphene-pk11';
import type { GeneratedObject } from './key-kind';

/**
 * The token's generation calls for the key kinds, asynchronous (on a libuv thread: on a network
 * HSM a generation is a round trip, and an RSA-4096 key pair takes seconds even in software).
 */

/** C_GenerateKey: one secret key. */
export function generateSecretKey(session: graphene.Session, mechanism: number, template: graphene.ITemplate): Promise<GeneratedObject[]> {
  return new Promise((resolve, reject) => {
    session.generateKey(mechanism, template, (error, key) => {
      if (error) reject(error);
      else if (!key) reject(new Error('the module generated no key'));
      else resolve([{ objectClass: 'secret', handle: key.handle }]);
    });
  });
}

/** C_GenerateKeyPair: a private key and its public key. */
export function generateKeyPair(
  session: graphene.Session,
  mechanism: number,
  publicTemplate: graphene.ITemplate,
  privateTemplate: graphene.ITemplate,
): Promise<GeneratedObject[]> {
  return new Promise((resolve, reject) => {
    session.generateKeyPair(mechanism, publicTemplate, privateTemplate, (error, keys) => {
      if (error) reject(error);
      else if (!keys) reject(new Error('the module generated no key pair'));
      else
        resolve([
          { objectClass: 'private', handle: keys.privateKey.handle },
          { objectClass: 'public', handle: keys.publicKey.handle },
        ]);
    });
  });
}

/**
 * Generates a throwaway session key pair (start-up probes: can the module make this curve?) and
 * destroys it.
 */
export function probeKeyPair(session: graphene.Session, mechanism: number, publicTemplate: graphene.ITemplate, privateTemplate: graphene.ITemplate): void {
  const keys = session.generateKeyPair(mechanism, { ...publicTemplate, token: false }, { ...privateTemplate, token: false });
  destroyQuietly(keys.privateKey);
  destroyQuietly(keys.publicKey);
}

/** Destroys a session object; one that cannot be destroyed goes with its session anyway. */
export function destroyQuietly(object: graphene.SessionObject): void {
  try {
    object.destroy();
  } catch {
    // A session object: it goes with the session.
  }
}
