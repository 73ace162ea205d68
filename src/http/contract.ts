import Ajv, { type ValidateFunction } from 'ajv';
import type { RequestHandler } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { OpenAPISchemaValidator } from 'express-openapi-validator/dist/framework/openapi.schema.validator';
import type { OpenAPIV3 } from 'express-openapi-validator/dist/framework/types';
import { KmsError, type KmsCode } from '../errors';
import { fieldErrorCodes, type FieldErrorCodes, type OpenApiDocument } from '../openapi-spec';
import { StartError } from '../start-error';
import { mediaTypeCheck } from './media-type';

/**
 * openapi.yaml enforced by express-openapi-validator (contractValidator), and its refusals turned
 * into the KmsError the contract names for them (ContractErrors).
 */

/** express-openapi-validator's refusals (its HttpError): a status, and what failed where. */
interface ValidatorError {
  readonly status: number;
  readonly errors: ReadonlyArray<{ readonly path: string; readonly message: string; readonly errorCode?: string }>;
}

const VALIDATOR_ERRORS = Object.values(OpenApiValidator.error);

export function isValidatorError(error: unknown): error is ValidatorError {
  return VALIDATOR_ERRORS.some((type) => error instanceof type);
}

/**
 * The document as express-openapi-validator types it, once checked against the OpenAPI 3.0 schema
 * with the validator's own check (its `validateApiSpec`, which would print every error on the
 * console and fail with "See the output."): a start that fails says why in one line.
 */
function checkedOpenApi3(document: OpenApiDocument): OpenAPIV3.DocumentV3 {
  const version = (document as { openapi?: unknown }).openapi;
  if (typeof version !== 'string' || !version.startsWith('3.0.')) throw new StartError(`openapi.yaml: expected OpenAPI 3.0, found ${String(version)}`);
  const { errors } = new OpenAPISchemaValidator({ version, validateApiSpec: true }).validate(document as unknown as OpenAPIV3.DocumentV3);
  const first = errors?.[0];
  if (first) {
    const more = errors.length > 1 ? ` (${errors.length - 1} more errors follow from it or beside it)` : '';
    throw new StartError(`openapi.yaml is not a valid OpenAPI 3.0 document: ${first.instancePath || '/'} ${first.message ?? 'is invalid'}${more}`);
  }
  return document as unknown as OpenAPIV3.DocumentV3;
}

/** express-openapi-validator for the whole document, with the media type check inside its chain. */
export interface ContractValidator {
  /** Every middleware of it, to mount before the operations' routes. */
  readonly handlers: readonly RequestHandler[];
  /** Those up to and including the check of the request (not its response): what compiles an operation's request validator. */
  readonly requestChecks: readonly RequestHandler[];
}

/**
 * The validator's middlewares for the whole document, to mount before the operations' routes.
 * One instance: each instance loads and compiles the document on start (one per operation cost
 * about 200 ms of start-up each). It matches a request against the document's paths in turn;
 * express-openapi-validator 5.6 compiled a path-to-regexp for each path tried on every request,
 * patched (patches/, upstream PR #1217) to compile each once (test/unit/validator-patch.test.ts).
 *
 * Requests: path (an unknown one is refused), method, path parameter, query (none is allowed),
 * media type and body, without type coercion. Responses, when `validateResponses` (the tests):
 * every JSON body sent with res.json. Between its matching of the operation and its check of the
 * request, the Content-Type is settled (media-type.ts): the validator keeps a compiled validator
 * per Content-Type it sees.
 */
export function contractValidator(document: OpenApiDocument, options: { validateResponses: boolean }): ContractValidator {
  const handlers: RequestHandler[] = OpenApiValidator.middleware({
    apiSpec: checkedOpenApi3(document),
    // Checked above already, with a one-line failure.
    validateApiSpec: false,
    validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false },
    validateResponses: options.validateResponses ? { coerceTypes: false, removeAdditional: false } : false,
    validateSecurity: false,
    // The API has no multipart body: no multer in the chain.
    fileUploader: false,
    ignoreUndocumented: false,
  });
  // The validator's middlewares are named functions; its request check is the one to come before.
  const at = handlers.findIndex((handler) => handler.name === REQUEST_CHECK);
  if (at < 0) throw new Error(`express-openapi-validator: no ${REQUEST_CHECK} in its chain, to check the media type before`);
  const requestChecks = [...handlers.slice(0, at), mediaTypeCheck(), handlers[at]!];
  return { handlers: [...requestChecks, ...handlers.slice(at + 1)], requestChecks };
}

/** express-openapi-validator's (5.6) name for the middleware that checks the request against the operation. */
const REQUEST_CHECK = 'requestMiddleware';

/** What the KMS API answers for each refusal of the validator. */
export class ContractErrors {
  private readonly fieldCodes: FieldErrorCodes;

  constructor(document: OpenApiDocument) {
    this.fieldCodes = fieldErrorCodes(document);
  }

  /**
   * The KmsError for a refusal of the validator, or undefined when `error` is not one: an unknown
   * path is KMS.0201, a method KMS.0215, a media type KMS.0214, a bad project id KMS.0201, a
   * query parameter KMS.0308 (not named), a missing field KMS.0204, a body that is not an object
   * KMS.0202, a bad field its `x-kms-error-code`. Validator messages name constraints, never the
   * value sent; only the top-level field is named, because deeper path segments would be the
   * caller's encryption_context keys.
   */
  kmsErrorOf(error: unknown, route: string | undefined): KmsError | undefined {
    if (!isValidatorError(error)) return undefined;
    switch (error.status) {
      case 404:
        return new KmsError('KMS.0201', { cause: error });
      case 405:
        return new KmsError('KMS.0215', { cause: error });
      case 413:
        return new KmsError('KMS.0203', { cause: error });
      case 415:
        return new KmsError('KMS.0214', { detail: 'Send the body as application/json.', cause: error });
      case 400:
        return this.badRequest(error, route);
      default:
        return new KmsError('KMS.0103', { cause: error });
    }
  }

  /**
   * The KmsError for a body field the contract refuses: a missing one is KMS.0204, a bad one its
   * `x-kms-error-code` (KMS.0308 when it names none), by the operation's route (openapi.yaml's
   * path: the tag paths' last segments do not name their operations). Also for bodies checked
   * without the validator (the command-line tool's, src/cli/request-check.ts).
   */
  bodyFieldError(route: string | undefined, field: string, message: string, required: boolean): KmsError {
    if (required) return new KmsError('KMS.0204', { detail: `${message}.` });
    const code: KmsCode = (route && this.fieldCodes.get(route)?.get(field)) || 'KMS.0308';
    return new KmsError(code, { detail: `${field}: ${message}.` });
  }

  private badRequest(error: ValidatorError, route: string | undefined): KmsError {
    const first = error.errors[0];
    if (!first) return new KmsError('KMS.0308', { cause: error });
    const [, location, field] = first.path.split('/');
    const required = first.errorCode === 'required.openapi.validation';
    switch (location) {
      case 'params':
        return new KmsError('KMS.0201', { detail: `${decodePointer(field ?? '')}: ${first.message}.`, cause: error });
      case 'query':
        return new KmsError('KMS.0308', { detail: 'Unknown query parameter.' });
      case 'body': {
        if (field === undefined) {
          return required
            ? new KmsError('KMS.0204', { detail: "must have required property 'body'." })
            : new KmsError('KMS.0202', { detail: 'The body must be a JSON object.' });
        }
        return this.bodyFieldError(route, decodePointer(field), first.message, required);
      }
      default:
        // The path does not decode ("malformed uri"), or a check the API does not use.
        return new KmsError(first.message.includes('malformed uri') ? 'KMS.0201' : 'KMS.0308', { cause: error });
    }
  }
}

function decodePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/**
 * The check of error bodies against openapi.yaml's Error response, for every error answer (the
 * tests turn it on): the validator sees the bodies of its operations' responses only, and not
 * those of requests refused before an operation is known (an unknown path, a bad body, a failed
 * authentication, what node:http refuses).
 */
export function errorBodyCheck(document: OpenApiDocument): (body: unknown) => string | undefined {
  const ajv = new Ajv({ strict: false });
  ajv.addSchema(document as object, 'openapi.yaml');
  const validate: ValidateFunction = ajv.compile({ $ref: 'openapi.yaml#/components/responses/Error/content/application~1json/schema' });
  return (body) => (validate(body) ? undefined : `${validate.errors?.[0]?.instancePath || '/'} ${validate.errors?.[0]?.message ?? 'is invalid'}`);
}
