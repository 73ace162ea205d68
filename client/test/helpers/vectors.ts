/**
 * Reads a test-vector manifest of the AWS Crypto Tools framework (`awses-decrypt`, versions 1–2:
 * https://github.com/awslabs/aws-crypto-tools-test-vector-framework) whose master keys are raw AES
 * keys, and builds the keyring each test names, so the same runner reads AWS's published vectors
 * and ours.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/raw-aes-keyring-node';
import { MultiKeyringNode, type KeyringNode } from '@aws-crypto/material-management-node';

export interface VectorTest {
  readonly id: string;
  readonly plaintext: Buffer;
  readonly ciphertext: Buffer;
  readonly keyring: KeyringNode;
}

interface MasterKey {
  readonly type: string;
  readonly key: string;
  readonly 'provider-id'?: string;
  readonly 'encryption-algorithm'?: string;
}

interface KeyEntry {
  readonly algorithm: string;
  readonly bits: number;
  readonly encoding: string;
  readonly material: string | readonly string[];
}

const WRAPPING: Record<number, (typeof RawAesWrappingSuiteIdentifier)[keyof typeof RawAesWrappingSuiteIdentifier]> = {
  128: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  192: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  256: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
};

function file(dir: string, uri: string): Buffer {
  if (!uri.startsWith('file://')) throw new Error(`only file:// URIs are read: ${uri}`);
  const relative = uri.slice('file://'.length);
  const resolved = path.resolve(dir, relative);
  if (!resolved.startsWith(path.resolve(dir) + path.sep)) throw new Error(`outside the manifest's folder: ${uri}`);
  return readFileSync(resolved);
}

export function rawAesKeyring(providerId: string, keyName: string, key: KeyEntry): KeyringNode {
  if (key.algorithm !== 'aes' || key.encoding !== 'base64') throw new Error(`not a base64 AES key: ${keyName}`);
  const material = Buffer.from(Array.isArray(key.material) ? key.material.join('') : (key.material as string), 'base64');
  const wrappingSuite = WRAPPING[key.bits];
  if (wrappingSuite === undefined || material.length * 8 !== key.bits) throw new Error(`bad AES key ${keyName}`);
  const unencryptedMasterKey = new Uint8Array(material.length);
  unencryptedMasterKey.set(material);
  return new RawAesKeyringNode({ keyName, keyNamespace: providerId, unencryptedMasterKey, wrappingSuite });
}

/** The tests of a decrypt manifest, skipping (and naming) those whose keys are not raw AES. */
export function readDecryptManifest(manifestPath: string): { tests: VectorTest[]; skipped: string[] } {
  const dir = path.dirname(manifestPath);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
    manifest: { type: string; version: number };
    keys: string;
    tests: Record<string, { plaintext: string; ciphertext: string; 'master-keys': MasterKey[] }>;
  };
  if (manifest.manifest.type !== 'awses-decrypt' || manifest.manifest.version > 2) throw new Error('not an awses-decrypt manifest (v1 or v2)');
  const keys = (JSON.parse(file(dir, manifest.keys).toString('utf8')) as { keys: Record<string, KeyEntry> }).keys;
  const tests: VectorTest[] = [];
  const skipped: string[] = [];
  for (const [id, test] of Object.entries(manifest.tests)) {
    const masterKeys = test['master-keys'];
    if (!masterKeys.every((mk) => mk.type === 'raw' && mk['encryption-algorithm'] === 'aes')) {
      skipped.push(id);
      continue;
    }
    const keyrings = masterKeys.map((mk) => rawAesKeyring(mk['provider-id'] ?? '', mk.key, keys[mk.key]!));
    tests.push({
      id,
      plaintext: file(dir, test.plaintext),
      ciphertext: file(dir, test.ciphertext),
      keyring: keyrings.length === 1 ? keyrings[0]! : new MultiKeyringNode({ children: keyrings }),
    });
  }
  return { tests, skipped };
}
