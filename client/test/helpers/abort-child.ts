/**
 * Streams whose consumer or producer gives up half-way, in a process of their own: the library's
 * encrypting stream, destroyed, throws an uncaught "Premature close" that would end the process.
 * Prints one JSON line of outcomes; an uncaught exception is counted in it, not fatal.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { EnvelopeClient } from '../../src';

const uncaught: string[] = [];
process.on('uncaughtException', (error) => uncaught.push(String(error)));

const unencryptedMasterKey = new Uint8Array(32);
unencryptedMasterKey.set(randomBytes(32));
const keyring = new RawAesKeyringNode({
  keyName: 'k',
  keyNamespace: 'test',
  unencryptedMasterKey,
  wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
});
const client = new EnvelopeClient({ kms: keyring, frameLength: 512 });

const stopAtFirst = async (source: AsyncIterable<Buffer>): Promise<void> => {
  for await (const _chunk of source) throw new Error('the reader stopped');
};
const failingSource = (): Readable =>
  new Readable({
    read() {
      this.destroy(new Error('the writer failed'));
    },
  });

async function main(): Promise<void> {
  const message = await client.encrypt(randomBytes(20_000));
  const outcome = (promise: Promise<unknown>): Promise<string> => promise.then(() => 'completed', (error: unknown) => (error instanceof Error ? error.name : 'odd'));
  const results = {
    encryptReaderStops: await outcome(pipeline(Readable.from([randomBytes(20_000)]), client.encryptStream(), stopAtFirst)),
    encryptWithLengthReaderStops: await outcome(pipeline(Readable.from([randomBytes(20_000)]), client.encryptStream({ plaintextLength: 20_000 }), stopAtFirst)),
    encryptWriterFails: await outcome(pipeline(failingSource(), client.encryptStream(), stopAtFirst)),
    decryptReaderStops: await outcome(pipeline(Readable.from([message]), client.decryptStream(), stopAtFirst)),
  };
  // Give anything thrown late (on a later tick, as the library's was) time to surface.
  await new Promise((resolve) => setTimeout(resolve, 200));
  process.stdout.write(`${JSON.stringify({ results, uncaught })}\n`);
}

void main();
