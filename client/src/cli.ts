#!/usr/bin/env node
/**
 * kms-envelope encrypt|decrypt: files or pipes through the envelope client.
 *
 *   kms-envelope encrypt [--in FILE] [--out FILE] [--context key=value]...
 *   kms-envelope decrypt [--in FILE] [--out FILE] [--context key=value]...   (pairs the message must have)
 *
 * The KMS comes from the environment: KMS_ENDPOINTS (comma-separated base URLs), KMS_PROJECT_ID,
 * KMS_KEY_ID, and KMS_ACCESS_KEY + KMS_SECRET_KEY (signed by the Huawei SDK core) or KMS_AUTH_TOKEN.
 * Without --in, standard input; without --out, standard output. An --out file is written to a new
 * file of mode 0600 beside it and renamed over it only on success: a failed decryption leaves no
 * unauthenticated remainder (and an existing --out file untouched), and plaintext is never readable
 * by others, whatever the umask. --in and --out naming the same file are refused (exit 2).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvelopeClient } from './client';
import { ConfigurationError, EnvelopeError } from './errors';
import type { KmsAuth } from './kms-http';

const USAGE = 'usage: kms-envelope encrypt|decrypt [--in FILE] [--out FILE] [--context key=value]...';

interface Arguments {
  readonly command: 'encrypt' | 'decrypt';
  readonly input: string | undefined;
  readonly output: string | undefined;
  readonly context: Record<string, string>;
}

function parseArguments(argv: readonly string[]): Arguments {
  const [command, ...rest] = argv;
  if (command !== 'encrypt' && command !== 'decrypt') throw new ConfigurationError(USAGE);
  let input: string | undefined;
  let output: string | undefined;
  const context: Record<string, string> = {};
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if (value === undefined) throw new ConfigurationError(`${flag} needs a value\n${USAGE}`);
    if (flag === '--in') input = value;
    else if (flag === '--out') output = value;
    else if (flag === '--context') {
      const at = value.indexOf('=');
      if (at <= 0) throw new ConfigurationError(`--context takes key=value, not ${value}`);
      context[value.slice(0, at)] = value.slice(at + 1);
    } else throw new ConfigurationError(`unknown option ${flag}\n${USAGE}`);
  }
  if (input !== undefined && output !== undefined && sameFile(input, output)) {
    throw new ConfigurationError(`--in and --out name the same file (${output}); write elsewhere, then rename`);
  }
  return { command, input, output, context };
}

/** The same path, or two names (links) of one existing file. */
function sameFile(a: string, b: string): boolean {
  if (path.resolve(a) === path.resolve(b)) return true;
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false; // one of them does not exist (yet)
  }
}

/**
 * Runs the pipeline into `output` through a fresh 0600 file in the same directory (so the rename
 * is atomic), synced and renamed over `output` only when the whole pipeline succeeded.
 */
async function writeAtomically(source: Readable, transform: NodeJS.ReadWriteStream, output: string): Promise<void> {
  const temp = path.join(path.dirname(path.resolve(output)), `.${path.basename(output)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    await pipeline(source, transform, createWriteStream('', { fd, autoClose: false }));
    fsyncSync(fd);
    closeSync(fd);
    renameSync(temp, output);
  } catch (error) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(temp, { force: true });
    throw error;
  }
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigurationError(`${name} is not set`);
  return value;
}

function clientFromEnv(env: NodeJS.ProcessEnv): EnvelopeClient {
  const auth: KmsAuth = env.KMS_AUTH_TOKEN
    ? { token: env.KMS_AUTH_TOKEN }
    : { accessKey: required(env, 'KMS_ACCESS_KEY'), secretKey: required(env, 'KMS_SECRET_KEY') };
  return new EnvelopeClient({
    kms: {
      endpoints: required(env, 'KMS_ENDPOINTS')
        .split(',')
        .map((endpoint) => endpoint.trim())
        .filter((endpoint) => endpoint.length > 0),
      projectId: required(env, 'KMS_PROJECT_ID'),
      keyId: required(env, 'KMS_KEY_ID'),
      auth,
    },
    // One message per run: a cache would only hold a key in memory longer.
    cache: false,
  });
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let args: Arguments;
  let client: EnvelopeClient;
  try {
    args = parseArguments(argv);
    client = clientFromEnv(env);
  } catch (error) {
    process.stderr.write(`kms-envelope: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  const source = args.input === undefined ? process.stdin : createReadStream(args.input);
  const transform =
    args.command === 'encrypt'
      ? client.encryptStream({ encryptionContext: args.context })
      : client.decryptStream({ expectedEncryptionContext: args.context });
  try {
    if (args.output === undefined) await pipeline(source, transform, process.stdout);
    else await writeAtomically(source, transform, args.output);
    return 0;
  } catch (error) {
    process.stderr.write(`kms-envelope: ${describe(error)}\n`);
    return 1;
  }
}

function describe(error: unknown): string {
  if (error instanceof EnvelopeError) return `${error.name}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`kms-envelope: ${describe(error)}\n`);
      process.exitCode = 1;
    },
  );
}
