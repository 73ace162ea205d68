/**
 * Writes our own encrypt → decrypt vectors (client/test/vectors/hsm-kms-envelope/) in the AWS
 * awses-decrypt manifest format, with raw AES keys of our own in the framework's keys.json format
 * (made once, then kept), so any AWS Encryption SDK's vector runner can check that it reads what
 * this package writes. Run: npx tsx client/test/vectors/generate.ts (the vectors are checked in; re-running
 * makes new ones, since every message has a random message id).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EnvelopeClient } from '../../src';
import { rawAesKeyring } from '../helpers/vectors';

const out = path.join(__dirname, 'hsm-kms-envelope');
const PROVIDER_ID = 'hsm-kms-raw-vectors';

function writeKeysOnce(): void {
  const keysPath = path.join(out, 'keys.json');
  if (existsSync(keysPath)) return;
  const keys = Object.fromEntries(
    [128, 192, 256].map((bits) => [
      `aes-${bits}`,
      { encrypt: true, decrypt: true, algorithm: 'aes', type: 'symmetric', bits, encoding: 'base64', 'line-separator': '', material: [randomBytes(bits / 8).toString('base64')] },
    ]),
  );
  mkdirSync(out, { recursive: true });
  writeFileSync(keysPath, `${JSON.stringify({ manifest: { type: 'keys', version: 3 }, keys }, null, 2)}\n`);
}

async function main(): Promise<void> {
  writeKeysOnce();
  const keys = JSON.parse(readFileSync(path.join(out, 'keys.json'), 'utf8')) as { keys: Record<string, Parameters<typeof rawAesKeyring>[2]> };
  rmSync(path.join(out, 'ciphertexts'), { recursive: true, force: true });
  mkdirSync(path.join(out, 'ciphertexts'), { recursive: true });
  mkdirSync(path.join(out, 'plaintexts'), { recursive: true });
  const plaintexts: Record<string, Buffer> = {
    empty: Buffer.alloc(0),
    small: Buffer.from(Array.from({ length: 10240 }, (_, i) => i % 251)),
  };
  for (const [name, data] of Object.entries(plaintexts)) writeFileSync(path.join(out, 'plaintexts', name), data);
  const tests: Record<string, unknown> = {};
  for (const keyName of ['aes-128', 'aes-192', 'aes-256']) {
    for (const frameLength of [512, 4096]) {
      for (const [plaintextName, data] of Object.entries(plaintexts)) {
        const client = new EnvelopeClient({ kms: rawAesKeyring(PROVIDER_ID, keyName, keys.keys[keyName]!), cache: false, frameLength });
        const id = randomUUID();
        const message = await client.encrypt(data, { encryptionContext: { purpose: 'hsm-kms envelope vectors', frame: String(frameLength) } });
        writeFileSync(path.join(out, 'ciphertexts', id), message);
        tests[id] = {
          description: `suite 0x0478, ${keyName} raw AES keyring, frame ${frameLength}, plaintext ${plaintextName}`,
          plaintext: `file://plaintexts/${plaintextName}`,
          ciphertext: `file://ciphertexts/${id}`,
          'master-keys': [{ type: 'raw', key: keyName, 'provider-id': PROVIDER_ID, 'encryption-algorithm': 'aes' }],
        };
      }
    }
  }
  const manifest = {
    manifest: { type: 'awses-decrypt', version: 2 },
    client: { name: 'hsm-kms/envelope', version: '0.1.0' },
    keys: 'file://keys.json',
    tests,
  };
  writeFileSync(path.join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}

void main();
