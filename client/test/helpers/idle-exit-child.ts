/**
 * A process that uses a caching client and then has nothing left to do: it must exit by itself
 * (the cache's sweep timer is unref'd), with its cached data key still held, and print "done".
 */
import { randomBytes } from 'node:crypto';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { EnvelopeClient } from '../../src';

const unencryptedMasterKey = new Uint8Array(32);
unencryptedMasterKey.set(randomBytes(32));
const kms = new RawAesKeyringNode({ keyName: 'k', keyNamespace: 'test', unencryptedMasterKey, wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING });
const client = new EnvelopeClient({ kms });
void client.encrypt('cached').then(() => process.stdout.write('done\n'));
