import { KmsError, type KmsCode } from '../errors';
import type { FieldErrorCodes } from '../openapi-spec';

/** What express-openapi-validator throws (its HttpError), as far as we read it. */
interface ValidatorError {
  status: number;
  errors: Array<{ path: string; message: string; errorCode?: string }>;
}

/** What body-parser throws for a body it cannot take (an http-errors error; `type` is not always set). */
interface BodyParserError {
  type?: string;
  status: number;
  expose: boolean;
}

function isValidatorError(error: unknown): error is ValidatorError {
  return typeof error === 'object' && error !== null && Array.isArray((error as ValidatorError).errors) && typeof (error as ValidatorError).status === 'number';
}

function isBodyParserError(error: unknown): error is BodyParserError {
  if (typeof error !== 'object' || error === null) return false;
  const { status, expose } = error as BodyParserError;
  return typeof status === 'number' && status >= 400 && status < 500 && expose === true;
}

const BODY_PARSER_CODES: Readonly<Record<string, KmsCode>> = {
  'entity.too.large': 'KMS.0203',
  'entity.parse.failed': 'KMS.0202',
  'entity.verify.failed': 'KMS.0202',
  'encoding.unsupported': 'KMS.0214',
  'charset.unsupported': 'KMS.0214',
  'request.size.invalid': 'KMS.0202',
};

/**
 * Turns any error into a KmsError: our own pass through; request-shape failures get the code the
 * contract names for the failing field; anything unknown is KMS.0103 with the cause kept for the log.
 */
export function toKmsError(error: unknown, operation: string | undefined, fieldCodes: FieldErrorCodes): KmsError {
  if (error instanceof KmsError) return error;
  if (isValidatorError(error)) return fromValidator(error, operation, fieldCodes);
  if (isBodyParserError(error)) {
    // A body that cannot be read (bad JSON, a corrupt compressed stream, ...) is the caller's bad message.
    const code = (error.type && BODY_PARSER_CODES[error.type]) || (error.status === 413 ? 'KMS.0203' : 'KMS.0202');
    return new KmsError(code, { cause: error });
  }
  return new KmsError('KMS.0103', { cause: error });
}

function fromValidator(error: ValidatorError, operation: string | undefined, fieldCodes: FieldErrorCodes): KmsError {
  if (error.status === 404) return new KmsError('KMS.0201', { cause: error });
  if (error.status === 405) return new KmsError('KMS.0215', { cause: error });
  if (error.status === 415) return new KmsError('KMS.0214', { detail: 'Send the body as application/json.', cause: error });

  const first = error.errors[0];
  if (!first) return new KmsError('KMS.0308', { cause: error });
  // Paths look like "/body/key_id" or "/body/encryption_context/k1"; "/params/project_id" is the URL.
  const [, location, field] = first.path.split('/');
  // AJV messages name constraints ("must match pattern ..."), never the value sent; deeper path
  // segments would (they are the caller's encryption_context keys), so only the field is named.
  const detail = field ? `${field}: ${first.message}.` : `${first.message}.`;
  if (location === 'params' || location === 'path') return new KmsError('KMS.0201', { detail, cause: error });
  if (first.errorCode?.startsWith('required')) return new KmsError('KMS.0204', { detail, cause: error });
  if (!field) return new KmsError('KMS.0202', { detail: 'The body must be a JSON object.', cause: error });
  const code = (operation && fieldCodes.get(operation)?.get(field)) || 'KMS.0308';
  return new KmsError(code, { detail, cause: error });
}
