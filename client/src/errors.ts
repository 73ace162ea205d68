/**
 * The client's one catalogue of errors. None carries plaintext, a data key or a credential: a KMS
 * refusal keeps only the KMS's error code, its message, the HTTP status, the request id and the
 * endpoint it came from, never the request body (which holds a data key's ciphertext, or, for
 * encrypt-datakey, its plaintext).
 */

/** The base of every error this package throws, so callers can catch them all at once. */
export class EnvelopeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The options given to the client or the keyring are not usable (no endpoint, no key, a bad limit). */
export class ConfigurationError extends EnvelopeError {}

/** The KMS answered with an error (4xx or 5xx): its code (e.g. KMS.2201) and request id. */
export class KmsRequestError extends EnvelopeError {
  constructor(
    readonly operation: string,
    readonly endpoint: string,
    readonly status: number,
    readonly code: string,
    readonly kmsMessage: string,
    readonly requestId: string | undefined,
  ) {
    super(`${operation} at ${endpoint} answered ${status} ${code}: ${kmsMessage}${requestId ? ` (request ${requestId})` : ''}`);
  }
  /** A 5xx (or 429) may succeed at another instance or later; a 4xx is the KMS's verdict on the request. */
  get retryable(): boolean {
    return this.status >= 500 || this.status === 429;
  }
}

/** No answer from an endpoint within the per-call timeout. */
export class KmsTimeoutError extends EnvelopeError {
  readonly retryable = true;
  constructor(readonly operation: string, readonly endpoint: string, readonly timeoutMs: number) {
    super(`${operation} at ${endpoint}: no answer within ${timeoutMs} ms`);
  }
}

/** The endpoint could not be reached (refused, reset, DNS) or answered something that is not the API. */
export class KmsConnectionError extends EnvelopeError {
  readonly retryable = true;
  constructor(readonly operation: string, readonly endpoint: string, detail: string) {
    super(`${operation} at ${endpoint}: ${detail}`);
  }
}

/**
 * Every endpoint failed with a retryable error. `code` and `requestId` are the last KMS answer's,
 * when there was one; `attempts` says what each endpoint did.
 */
export class KmsUnavailableError extends EnvelopeError {
  readonly code: string | undefined;
  readonly requestId: string | undefined;
  constructor(readonly operation: string, readonly attempts: readonly KmsAttemptError[]) {
    super(`${operation}: no endpoint answered (${attempts.map((a) => a.message).join('; ')})`);
    const lastAnswer = [...attempts].reverse().find((a): a is KmsRequestError => a instanceof KmsRequestError);
    this.code = lastAnswer?.code;
    this.requestId = lastAnswer?.requestId;
  }
}

/** What one call to one endpoint can fail with. */
export type KmsAttemptError = KmsRequestError | KmsTimeoutError | KmsConnectionError;

/** The KMS answered 200 with something that is not a usable data key (wrong length, wrong digest). */
export class KmsResponseError extends EnvelopeError {
  constructor(readonly operation: string, readonly endpoint: string, detail: string, readonly requestId: string | undefined) {
    super(`${operation} at ${endpoint}: ${detail}${requestId ? ` (request ${requestId})` : ''}`);
  }
}

/** A stream given a plaintextLength was written more bytes than that. */
export class PlaintextLengthExceededError extends EnvelopeError {}

/** The message holds no data key this keyring may open (another provider, project or key). */
export class NoMatchingDataKeyError extends EnvelopeError {}

/** The message's encryption context lacks a pair the caller required, or has another value for it. */
export class EncryptionContextMismatchError extends EnvelopeError {}

/**
 * The message could not be decrypted: it is malformed, truncated, reordered, spliced or tampered
 * with, or does not meet the commitment policy. The library's own error is the cause.
 */
export class MessageError extends EnvelopeError {}

export function isRetryable(error: unknown): boolean {
  return (
    error instanceof KmsTimeoutError ||
    error instanceof KmsConnectionError ||
    (error instanceof KmsRequestError && error.retryable)
  );
}
