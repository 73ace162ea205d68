import Ajv, { type ValidateFunction } from 'ajv';
import type { KmsError } from '../errors';
import { ContractErrors } from '../http/contract';
import type { Operation } from '../http/operation';
import { loadOpenApiDocument, type OpenApiDocument } from '../openapi-spec';

/**
 * openapi.yaml's checks of a request, for the command-line tool: it calls the operations without
 * HTTP, so without express-openapi-validator, and must not accept what the API refuses (an alias
 * the contract's pattern rules out, a description too long). A refused body gets the KmsError the
 * API would answer (ContractErrors.bodyFieldError).
 */
export class RequestCheck {
  private readonly document: OpenApiDocument;
  private readonly ajv = new Ajv({ strict: false });
  private readonly contract: ContractErrors;
  private readonly bodies = new Map<string, ValidateFunction>();
  private readonly project: ValidateFunction;

  constructor(document: OpenApiDocument = loadOpenApiDocument()) {
    this.document = document;
    this.ajv.addSchema(document as object, 'openapi.yaml');
    this.contract = new ContractErrors(document);
    this.project = this.ajv.compile({ $ref: 'openapi.yaml#/components/parameters/ProjectId/schema' });
  }

  /** Whether `projectId` is one the API's paths take. */
  isProjectId(projectId: string): boolean {
    return this.project(projectId) === true;
  }

  /** Whether openapi.yaml declares a request body for `op` (a POST's, delete-alias's), which the API checks. */
  declaresBody(op: Operation): boolean {
    return this.bodySchemaRef(op) !== undefined;
  }

  /** The KmsError the API would answer for this body of `op`, or undefined when it passes. */
  refusal(op: Operation, body: unknown): KmsError | undefined {
    const validate = this.bodyValidator(op);
    if (validate(body)) return undefined;
    const first = validate.errors?.[0];
    if (!first) return this.contract.bodyFieldError(op.path, '', 'is invalid', false);
    if (first.keyword === 'required') return this.contract.bodyFieldError(op.path, '', first.message ?? 'is required', true);
    const field = first.instancePath.split('/')[1]?.replace(/~1/g, '/').replace(/~0/g, '~') ?? '';
    return this.contract.bodyFieldError(op.path, field, first.message ?? 'is invalid', false);
  }

  /** The $ref of the body schema of `op`'s method at its path; a GET has none. */
  private bodySchemaRef(op: Operation): string | undefined {
    if (op.method === 'get') return undefined;
    return this.document.paths[op.path]?.[op.method]?.requestBody?.content?.['application/json']?.schema?.$ref;
  }

  private bodyValidator(op: Operation): ValidateFunction {
    const key = `${op.method} ${op.path}`;
    let validate = this.bodies.get(key);
    if (!validate) {
      const ref = this.bodySchemaRef(op);
      if (ref === undefined) throw new Error(`openapi.yaml: ${op.name} has no request body schema to check`);
      validate = this.ajv.compile({ $ref: `openapi.yaml${ref}` });
      this.bodies.set(key, validate);
    }
    return validate;
  }
}
