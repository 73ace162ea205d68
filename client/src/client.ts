/**
 * The application's entry point: records (`encrypt`, `decrypt`) and streams (`encryptStream`,
 * `decryptStream`) in the AWS Encryption SDK message format v2, algorithm suite 0x0478
 * (AES-256-GCM, HKDF-SHA512, key commitment, unsigned), under a KMS keyring, with the data-key cache
 * in front of it unless switched off.
 */
import type { Duplex } from 'node:stream';
import { buildDecrypt } from '@aws-crypto/decrypt-node';
import { buildEncrypt } from '@aws-crypto/encrypt-node';
import {
  AlgorithmSuiteIdentifier,
  CommitmentPolicy,
  KeyringNode,
  NodeDefaultCryptographicMaterialsManager,
  type EncryptionContext,
  type NodeDecryptionMaterial,
  type NodeEncryptionMaterial,
  type NodeMaterialsManager,
} from '@aws-crypto/material-management-node';
import { CachingMaterials, DEFAULT_CACHE_LIMITS, type DataKeyCacheLimits } from './cache';
import { ConfigurationError, EncryptionContextMismatchError, EnvelopeError, MessageError } from './errors';
import { KmsKeyringNode, type KmsKeyringOptions } from './keyring';
import { GuardedEncryptStream } from './guarded-encrypt-stream';

/** The default DecryptOptions.maxBodySize: 1 MiB, the largest frameLength this client writes. */
export const DEFAULT_MAX_BODY_SIZE = 2 ** 20;

/** The one suite written: AES-256-GCM, HKDF-SHA512 with key commitment, no signature. */
export const SUITE = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;

export interface EnvelopeClientOptions {
  /** The KMS to use (a KmsKeyringNode is built from these), or any keyring (e.g. a raw AES keyring in tests). */
  readonly kms: KmsKeyringOptions | KeyringNode;
  /** The data-key cache's limits (each one required when given), or false for a KMS call per message. */
  readonly cache?: DataKeyCacheLimits | false;
  /** Plaintext bytes per frame (default 4096); a stream holds about one frame in memory. */
  readonly frameLength?: number;
  /**
   * Default REQUIRE_ENCRYPT_REQUIRE_DECRYPT: only messages with key commitment are decrypted.
   * REQUIRE_ENCRYPT_ALLOW_DECRYPT also opens older, uncommitted messages.
   */
  readonly commitmentPolicy?: CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT | CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT;
  /**
   * Decryption: a message naming more data keys than this is refused before any KMS call (default 1;
   * raise it to read messages written under a multi-keyring). Encryption is not limited by it.
   */
  readonly maxEncryptedDataKeys?: number;
}

export interface EncryptOptions {
  /** Authenticated with the message, stored in its header in clear, and bound into its data key by the KMS. */
  readonly encryptionContext?: EncryptionContext;
}

export interface EncryptStreamOptions extends EncryptOptions {
  /**
   * The exact plaintext length, when known: the data-key cache can then count the stream against its
   * byte limit. A stream of unknown length always gets a data key of its own.
   */
  readonly plaintextLength?: number;
}

export interface DecryptOptions {
  /** Each pair must be in the message's encryption context, with this value. */
  readonly expectedEncryptionContext?: EncryptionContext;
  /**
   * A frame (or an unframed body) declaring more plaintext than this many bytes is refused before
   * any of it is read or buffered. Default DEFAULT_MAX_BODY_SIZE (1 MiB, the largest frameLength this
   * client writes): the frame size is chosen by whoever wrote the message, and a decrypting stream
   * holds a whole frame until its tag verified.
   */
  readonly maxBodySize?: number;
}

export interface DecryptResult {
  readonly plaintext: Buffer;
  readonly encryptionContext: EncryptionContext;
}

export interface EnvelopeMetrics {
  readonly hits: number;
  readonly misses: number;
  /** HTTP calls made to the KMS (every attempt at every endpoint), in all and per operation. */
  readonly kmsCalls: number;
  readonly kmsCallsByOperation: Record<string, number>;
}

export class EnvelopeClient {
  readonly keyring: KeyringNode;
  private readonly cmm: NodeMaterialsManager;
  private readonly cache: CachingMaterials | undefined;
  private readonly frameLength: number;
  private readonly encryptClient: ReturnType<typeof buildEncrypt>;
  private readonly decryptClient: ReturnType<typeof buildDecrypt>;

  constructor(options: EnvelopeClientOptions) {
    this.keyring = options.kms instanceof KeyringNode ? options.kms : new KmsKeyringNode(options.kms);
    const partition = this.keyring instanceof KmsKeyringNode ? this.keyring.partition : `keyring-${Math.random().toString(36).slice(2)}`;
    const limits = options.cache === undefined ? DEFAULT_CACHE_LIMITS : options.cache;
    this.cache = limits === false ? undefined : new CachingMaterials(this.keyring, partition, limits);
    this.cmm = this.cache ?? new NodeDefaultCryptographicMaterialsManager(this.keyring);
    this.frameLength = options.frameLength ?? 4096;
    if (!Number.isSafeInteger(this.frameLength) || this.frameLength <= 0 || this.frameLength > 2 ** 20) {
      throw new ConfigurationError('frameLength must be an integer from 1 to 1 MiB');
    }
    const commitmentPolicy = options.commitmentPolicy ?? CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT;
    // The limit guards decryption (a message naming many data keys would cost a KMS call each);
    // on encryption the keyring decides how many it writes (a multi-keyring writes one per member).
    this.encryptClient = buildEncrypt({ commitmentPolicy, maxEncryptedDataKeys: false });
    this.decryptClient = buildDecrypt({ commitmentPolicy, maxEncryptedDataKeys: options.maxEncryptedDataKeys ?? 1 });
  }

  get metrics(): EnvelopeMetrics {
    const http = this.keyring instanceof KmsKeyringNode ? this.keyring.http.calls : undefined;
    return {
      ...(this.cache?.metrics ?? { hits: 0, misses: 0 }),
      kmsCalls: http?.total ?? 0,
      kmsCallsByOperation: http?.byOperation() ?? {},
    };
  }

  /**
   * Zeroes and drops every cached data key and stops the cache's sweep timer. The client still works
   * afterwards, but caches nothing (a KMS call per message). Messages in flight keep their own copy
   * of the data key until they end (the library zeroes it then).
   */
  close(): void {
    this.cache?.close();
  }

  async encrypt(plaintext: Uint8Array | string, options: EncryptOptions = {}): Promise<Buffer> {
    const materials = zeroingAfterUse(this.cmm);
    try {
      const { result } = await this.encryptClient.encrypt(materials.cmm, plaintext, {
        suiteId: SUITE,
        encryptionContext: options.encryptionContext ?? {},
        frameLength: this.frameLength,
      });
      return result;
    } finally {
      materials.zero();
    }
  }

  async decrypt(message: Uint8Array | string, options: DecryptOptions = {}): Promise<DecryptResult> {
    let output;
    const materials = zeroingAfterUse(this.cmm);
    try {
      output = await this.decryptClient.decrypt(materials.cmm, message, { maxBodySize: maxBodySize(options) });
    } catch (error) {
      throw asMessageError(error);
    } finally {
      materials.zero();
    }
    const context = output.messageHeader.encryptionContext;
    try {
      checkContext(context, options.expectedEncryptionContext);
    } catch (error) {
      output.plaintext.fill(0);
      throw error;
    }
    return { plaintext: output.plaintext, encryptionContext: context };
  }

  /**
   * A Duplex: write plaintext, read the message. With plaintextLength, writing more than that fails
   * the stream (PlaintextLengthExceededError): the cache counted that many bytes against the data key.
   */
  encryptStream(options: EncryptStreamOptions = {}): Duplex {
    const declared = options.plaintextLength;
    if (declared !== undefined && (!Number.isSafeInteger(declared) || declared < 0)) {
      throw new ConfigurationError('plaintextLength must be a non-negative integer');
    }
    const materials = zeroingAfterUse(this.cmm);
    const stream = this.encryptClient.encryptStream(materials.cmm, {
      suiteId: SUITE,
      encryptionContext: options.encryptionContext ?? {},
      frameLength: this.frameLength,
      ...(declared === undefined ? {} : { plaintextLength: declared }),
    });
    return new GuardedEncryptStream(stream, declared, materials.zero);
  }

  /**
   * A Duplex: write the message, read the plaintext. A frame's plaintext is released only after that
   * frame's tag verified; a message cut short, or with frames reordered, spliced or altered, ends the
   * stream with a MessageError (what was released before is authentic, but the whole is not: treat it
   * as failed). Signed suites are refused, since their signature is checked only at the end.
   */
  decryptStream(options: DecryptOptions = {}): Duplex {
    const materials = zeroingAfterUse(this.cmm);
    const stream = this.decryptClient.decryptUnsignedMessageStream(materials.cmm, { maxBodySize: maxBodySize(options) });
    // Once it is over, however it ended, no frame is deciphered any more.
    stream.once('end', materials.zero);
    stream.once('close', materials.zero);
    const expected = options.expectedEncryptionContext;
    stream.once('MessageHeader', (header: { encryptionContext: EncryptionContext }) => {
      try {
        checkContext(header.encryptionContext, expected);
      } catch (error) {
        stream.destroy(error as Error);
      }
    });
    return wrapStreamErrors(stream);
  }
}

/**
 * The materials manager for one message, keeping the material it hands out so that its data key
 * can be zeroed when the message is done: the library zeroes it only when its framing (or
 * deciphering) stream is destroyed, which does not happen for encryption, nor for decrypt().
 * (A cached key's own copy stays in the cache; this is the message's clone.)
 */
function zeroingAfterUse(inner: NodeMaterialsManager): { cmm: NodeMaterialsManager; zero: () => void } {
  let material: NodeEncryptionMaterial | NodeDecryptionMaterial | undefined;
  return {
    cmm: {
      getEncryptionMaterials: async (request) => (material = await inner.getEncryptionMaterials(request)),
      decryptMaterials: async (request) => (material = await inner.decryptMaterials(request)),
    },
    zero: () => {
      material?.zeroUnencryptedDataKey();
    },
  };
}

function maxBodySize(options: DecryptOptions): number {
  const value = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE;
  if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigurationError('maxBodySize must be a positive integer');
  return value;
}

function checkContext(actual: EncryptionContext, expected: EncryptionContext | undefined): void {
  if (!expected) return;
  for (const [key, value] of Object.entries(expected)) {
    if (actual[key] !== value) throw new EncryptionContextMismatchError(`the message's encryption context does not have ${key} as expected`);
  }
}

/** The library's errors (plain Errors) become MessageErrors; our own pass through. */
function asMessageError(error: unknown): Error {
  if (error instanceof EnvelopeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new MessageError(`the message could not be decrypted: ${message}`, { cause: error });
}

function wrapStreamErrors(stream: Duplex): Duplex {
  const emit = stream.emit.bind(stream);
  stream.emit = ((event: string | symbol, ...args: unknown[]): boolean =>
    event === 'error' ? emit('error', asMessageError(args[0])) : emit(event, ...args)) as Duplex['emit'];
  return stream;
}
