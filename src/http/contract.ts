import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { KmsError, type KmsCode } from '../errors';
import { fieldErrorCodes, type OpenApiDocument } from '../openapi-spec';

/**
 * openapi.yaml compiled, once, into one validator per operation: the path parameter, the query,
 * the media type and the body of a request, and (when the tests ask for it) the response. A
 * request that breaks the contract becomes the KmsError the contract names for it: the field's
 * `x-kms-error-code`, KMS.0204 for a missing field, KMS.0202 for a body that is not an object,
 * KMS.0214 for a media type other than JSON, KMS.0201 for a bad project id.
 *
 * AJV is the validator express-openapi-validator used; calling it directly keeps the same
 * semantics without its per-request path search and Express (see README, Benchmark).
 */

const DOCUMENT_ID = 'openapi.yaml';
const JSON_MEDIA_TYPE = 'application/json';

export interface OperationContract {
  readonly name: string;
  /** Refuses a bad project id or query; `query` is the raw query string without '?'. */
  checkRequestLine(projectId: string, query: string): void;
  /**
   * Refuses a body of the wrong media type (`mediaType` is the Content-Type header, or undefined
   * when there was none) or one that breaks the schema. `body` is undefined when none was sent.
   */
  checkBody(mediaType: string | undefined, body: unknown): void;
  /** Checks a response against the document; undefined when it conforms, else what is wrong. */
  responseProblem(status: number, body: unknown): string | undefined;
}

interface PathItem {
  post?: {
    parameters?: Array<{ $ref?: string; name?: string; in?: string }>;
    requestBody?: { required?: boolean; content?: Record<string, unknown> };
    responses?: Record<string, { $ref?: string; content?: Record<string, unknown> }>;
  };
}

/** A JSON pointer into openapi.yaml, as an AJV `$ref`. */
function pointer(...segments: string[]): string {
  return `${DOCUMENT_ID}#/${segments.map((segment) => encodeURIComponent(segment.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;
}

/** `#/components/parameters/ProjectId` → ['components', 'parameters', 'ProjectId']. */
function refSegments(ref: string): string[] {
  return ref.replace(/^#\//, '').split('/');
}

export class Contract {
  private readonly ajv = new Ajv({
    // The document carries OpenAPI keywords (example, x-kms-error-code, ...) that are not JSON Schema.
    strict: false,
    allErrors: false,
    coerceTypes: false,
    useDefaults: true,
  });
  private readonly operations = new Map<string, OperationContract>();
  private readonly validateError: ValidateFunction | undefined;

  constructor(document: OpenApiDocument) {
    this.ajv.addSchema(document as object, DOCUMENT_ID);
    const components = (document as { components?: { responses?: Record<string, unknown> } }).components;
    this.validateError = components?.responses?.Error ? this.compile(pointer('components', 'responses', 'Error', 'content', JSON_MEDIA_TYPE, 'schema')) : undefined;
    const fieldCodes = fieldErrorCodes(document);
    for (const [route, item] of Object.entries(document.paths as Record<string, PathItem>)) {
      const post = item.post;
      if (!post) continue;
      const name = route.split('/').pop()!;
      this.operations.set(name, this.compileOperation(route, name, post, fieldCodes.get(name) ?? new Map()));
    }
  }

  /** Checks an error body against the document's Error response; undefined when it conforms. */
  errorProblem(body: unknown): string | undefined {
    if (!this.validateError) return 'openapi.yaml describes no Error response';
    return problemOf(this.validateError, body);
  }

  /** The contract of `POST .../kms/<name>`, or undefined when the API has no such operation. */
  operation(name: string): OperationContract | undefined {
    return this.operations.get(name);
  }

  private compile(ref: string): ValidateFunction {
    return this.ajv.compile({ $ref: ref });
  }

  private compileOperation(route: string, name: string, post: NonNullable<PathItem['post']>, fieldCodes: ReadonlyMap<string, KmsCode>): OperationContract {
    const projectIdParameter = (post.parameters ?? []).find((parameter) => parameter.$ref?.endsWith('/ProjectId') || parameter.name === 'project_id');
    const projectIdRef = projectIdParameter?.$ref ? pointer(...refSegments(projectIdParameter.$ref), 'schema') : undefined;
    const validateProjectId = projectIdRef ? this.compile(projectIdRef) : undefined;

    const requestBody = post.requestBody;
    const bodyRequired = requestBody?.required === true;
    const validateBody = requestBody?.content?.[JSON_MEDIA_TYPE]
      ? this.compile(pointer('paths', route, 'post', 'requestBody', 'content', JSON_MEDIA_TYPE, 'schema'))
      : undefined;

    const responseValidators = new Map<string, ValidateFunction>();
    for (const [status, response] of Object.entries(post.responses ?? {})) {
      const base = response.$ref ? refSegments(response.$ref) : ['paths', route, 'post', 'responses', status];
      responseValidators.set(status, this.compile(pointer(...base, 'content', JSON_MEDIA_TYPE, 'schema')));
    }

    return {
      name,
      checkRequestLine(projectId: string, query: string): void {
        if (validateProjectId && !validateProjectId(projectId)) {
          throw new KmsError('KMS.0201', { detail: `project_id: ${messageOf(validateProjectId.errors)}.` });
        }
        // The API defines no query parameters; one that is sent is refused rather than ignored.
        if (query) {
          const [parameter] = new URLSearchParams(query).keys();
          if (parameter !== undefined) throw new KmsError('KMS.0308', { detail: 'Unknown query parameter.' });
        }
      },
      checkBody(mediaType: string | undefined, body: unknown): void {
        if (mediaType !== undefined && !isJson(mediaType)) throw unsupportedMediaType();
        if (body === undefined) {
          if (!bodyRequired) return;
          // A required body sent without a type is refused for its type, as one of another type is.
          if (mediaType === undefined) throw unsupportedMediaType();
          throw new KmsError('KMS.0204', { detail: "must have required property 'body'." });
        }
        if (validateBody && !validateBody(body)) throw bodyError(validateBody.errors, fieldCodes);
      },
      responseProblem(status: number, body: unknown): string | undefined {
        const validate = responseValidators.get(String(status)) ?? responseValidators.get('default');
        if (!validate) return `no response ${status} is documented`;
        return problemOf(validate, body);
      },
    };
  }
}

/** Whether a Content-Type value names JSON (its parameters ignored, in any case). */
function isJson(contentType: string): boolean {
  const semicolon = contentType.indexOf(';');
  return (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase() === JSON_MEDIA_TYPE;
}

function unsupportedMediaType(): KmsError {
  return new KmsError('KMS.0214', { detail: 'Send the body as application/json.' });
}

/** Undefined when `body` conforms, else where and how it does not. */
function problemOf(validate: ValidateFunction, body: unknown): string | undefined {
  return validate(body) ? undefined : `${validate.errors?.[0]?.instancePath || '/'} ${messageOf(validate.errors)}`;
}

function messageOf(errors: ErrorObject[] | null | undefined): string {
  return errors?.[0]?.message ?? 'is invalid';
}

/**
 * The KmsError of the first schema violation. AJV messages name constraints, never the value
 * sent; only the top-level field is named, because deeper path segments would be the caller's
 * encryption_context keys.
 */
function bodyError(errors: ErrorObject[] | null | undefined, fieldCodes: ReadonlyMap<string, KmsCode>): KmsError {
  const first = errors?.[0];
  if (!first) return new KmsError('KMS.0308');
  const field = first.instancePath.split('/')[1];
  const detail = field ? `${decodePointer(field)}: ${first.message}.` : `${first.message}.`;
  if (first.keyword === 'required') return new KmsError('KMS.0204', { detail });
  if (!field) return new KmsError('KMS.0202', { detail: 'The body must be a JSON object.' });
  return new KmsError(fieldCodes.get(decodePointer(field)) ?? 'KMS.0308', { detail });
}

function decodePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}
