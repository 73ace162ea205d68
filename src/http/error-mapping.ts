import { KmsError, type KmsCode } from '../errors';

/** What body-parser throws for a body it cannot take (an http-errors error; `type` is not always set). */
interface BodyParserError {
  type?: string;
  status: number;
  expose: boolean;
}

function isBodyParserError(error: unknown): error is BodyParserError {
  if (typeof error !== 'object' || error === null) return false;
  const { status, expose } = error as BodyParserError;
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true;
}

/** By body-parser's error type (a Map: own entries only, whatever string the type holds). */
const BODY_PARSER_CODES: ReadonlyMap<string, KmsCode> = new Map([
  ['entity.too.large', 'KMS.0203'],
  ['entity.parse.failed', 'KMS.0202'],
  ['entity.verify.failed', 'KMS.0202'],
  ['encoding.unsupported', 'KMS.0214'],
  ['charset.unsupported', 'KMS.0214'],
  ['request.size.invalid', 'KMS.0202'],
]);

/** Whether a body was refused for its size (answered before authentication). */
export function isBodyTooLarge(error: unknown): boolean {
  if (error instanceof KmsError) return error.code === 'KMS.0203';
  return isBodyParserError(error) && (error.type === 'entity.too.large' || error.status === 413);
}

/**
 * Turns any error into a KmsError: our own (the contract's included) pass through; a body that
 * cannot be read (bad JSON, a corrupt compressed stream, ...) is the caller's bad message; anything
 * unknown is KMS.0103 with the cause kept for the log.
 */
export function toKmsError(error: unknown): KmsError {
  if (error instanceof KmsError) return error;
  if (isBodyParserError(error)) {
    const code = (error.type && BODY_PARSER_CODES.get(error.type)) || (error.status === 413 ? 'KMS.0203' : 'KMS.0202');
    return new KmsError(code, { cause: error });
  }
  return new KmsError('KMS.0103', { cause: error });
}
