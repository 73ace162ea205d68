/**
 * The operations and openapi.yaml describe one API: start-up fails when they disagree either way,
 * and the types the handlers are written against are generated from the document as it is.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DOCS_FILES, DOCS_ROUTES } from '../../src/http/docs-routes';
import { HEALTH_ROUTES } from '../../src/http/health-routes';
import { ContractErrors } from '../../src/http/contract';
import { checkOperations, type Operation } from '../../src/http/operation';
import { allOperations, PUBLIC_ROUTES, type OperationServices } from '../../src/http/routes/all-operations';
import { versionDocuments } from '../../src/http/routes/versions';
import { loadOpenApiDocument, OPENAPI_PATH } from '../../src/openapi-spec';

/** The service's operations; their handlers are never called here. */
const operations: Operation[] = allOperations({} as OperationServices);
const documents = versionDocuments();

describe('the operations against openapi.yaml', () => {
  it('agree: every documented endpoint has a handler, and every handler a documented endpoint', () => {
    expect(() => checkOperations(loadOpenApiDocument(), operations, documents, PUBLIC_ROUTES)).not.toThrow();
  });

  it('a 204 in openapi.yaml and an operation that says status 204 go together, both ways (the tag writes)', () => {
    const document = loadOpenApiDocument();
    const route = '/v1.0/{project_id}/kms/{key_id}/tags';
    const item = document.paths[route] as { post: { responses: Record<string, unknown> } };
    const { '204': noContent, ...withoutNoContent } = item.post.responses;
    const answering200 = { paths: { ...document.paths, [route]: { ...item, post: { ...item.post, responses: { ...withoutNoContent, '200': noContent } } } } };
    expect(() => checkOperations(answering200, operations, documents, PUBLIC_ROUTES)).toThrow(`POST ${route} answers 204 in openapi.yaml or its operation says status 204, but not both`);
    const saysNothing = operations.map((op) => (op.path === route && op.method === 'post' ? { ...op, status: undefined } : op));
    expect(() => checkOperations(document, saysNothing, documents, PUBLIC_ROUTES)).toThrow(`POST ${route} answers 204 in openapi.yaml or its operation says status 204, but not both`);
  });

  it('field error codes are the route\'s, not its last segment\'s: the batch tags action and resource_instances both end in /action', () => {
    const contract = new ContractErrors(loadOpenApiDocument());
    expect(contract.bodyFieldError('/v1.0/{project_id}/kms/resource_instances/action', 'limit', 'must match pattern', false).code).toBe('KMS.1601');
    expect(contract.bodyFieldError('/v1.0/{project_id}/kms/resource_instances/action', 'matches', 'must be array', false).code).toBe('KMS.0415');
    // The batch path has no such fields: the generic code, not resource_instances' codes.
    expect(contract.bodyFieldError('/v1.0/{project_id}/kms/{key_id}/tags/action', 'limit', 'must match pattern', false).code).toBe('KMS.0308');
    expect(contract.bodyFieldError('/v1.0/{project_id}/kms/{key_id}/tags/action', 'matches', 'must be array', false).code).toBe('KMS.0308');
    expect(contract.bodyFieldError('/v1.0/{project_id}/kms/{key_id}/tags/action', 'tags', 'must be array', false).code).toBe('KMS.0414');
  });

  it('the health probes are the routes openapi.yaml serves without a credential (`security: []`), both ways', () => {
    const document = loadOpenApiDocument();
    expect(() => checkOperations(document, operations, documents)).toThrow('GET /readyz is in openapi.yaml but has no handler');
    const readyz = document.paths['/readyz'] as { get: object };
    const withCredential = { paths: { ...document.paths, '/readyz': { get: { ...readyz.get, security: undefined } } } };
    expect(() => checkOperations(withCredential, operations, documents, PUBLIC_ROUTES)).toThrow('GET /readyz is served without a credential but openapi.yaml does not say `security: []`');
    const listKeys = document.paths['/v1.0/{project_id}/kms/list-keys']!;
    const publicListKeys = { paths: { ...document.paths, '/v1.0/{project_id}/kms/list-keys': { post: { ...listKeys.post, security: [] } } } };
    expect(() => checkOperations(publicListKeys, operations, documents, PUBLIC_ROUTES)).toThrow('POST /v1.0/{project_id}/kms/list-keys says `security: []` in openapi.yaml but is not a public route');
  });

  it('the contract and its page are routes openapi.yaml serves without a credential (`security: []`), both ways', () => {
    const document = loadOpenApiDocument();
    for (const route of DOCS_ROUTES) expect([route.path, (document.paths[route.path] as { get?: { security?: unknown } }).get?.security]).toEqual([route.path, []]);
    expect(() => checkOperations(document, operations, documents, HEALTH_ROUTES)).toThrow('GET /docs/{file} is in openapi.yaml but has no handler');
    const yaml = document.paths['/openapi.yaml'] as { get: object };
    const withCredential = { paths: { ...document.paths, '/openapi.yaml': { get: { ...yaml.get, security: undefined } } } };
    expect(() => checkOperations(withCredential, operations, documents, PUBLIC_ROUTES)).toThrow('GET /openapi.yaml is served without a credential but openapi.yaml does not say `security: []`');
  });

  it('the page serves exactly the files openapi.yaml lists for /docs/{file}', () => {
    const docsFile = loadOpenApiDocument().paths['/docs/{file}'] as { get: { parameters: { name: string; schema: { enum: string[] } }[] } };
    expect(docsFile.get.parameters.map((p) => [p.name, p.schema.enum])).toEqual([['file', [...DOCS_FILES]]]);
  });

  it('GET /metrics is served with its own token, as openapi.yaml says (`security: [{metricsToken: []}]`), both ways', () => {
    const document = loadOpenApiDocument();
    const metrics = document.paths['/metrics'] as { get: object };
    const withPath = (get: object) => ({ paths: { ...document.paths, '/metrics': { get } } });
    expect(() => checkOperations(withPath({ ...metrics.get, security: [] }), operations, documents, PUBLIC_ROUTES)).toThrow(
      'GET /metrics is served without a credential but openapi.yaml does not say `security: [{metricsToken: []}]`',
    );
    expect(() => checkOperations(withPath({ ...metrics.get, security: undefined }), operations, documents, PUBLIC_ROUTES)).toThrow(
      'GET /metrics is served without a credential but openapi.yaml does not say `security: [{metricsToken: []}]`',
    );
    expect(() => checkOperations(document, operations, documents, [...HEALTH_ROUTES, ...DOCS_ROUTES])).toThrow('GET /metrics says `security: [{metricsToken: []}]` in openapi.yaml but is not a public route');
    expect((document.components as { securitySchemes?: Record<string, unknown> }).securitySchemes?.metricsToken).toEqual(expect.objectContaining({ type: 'http', scheme: 'bearer' }));
  });

  it('a documented GET without its handler fails (user-quotas; the public version list)', () => {
    const withoutQuotas = operations.filter((op) => op.name !== 'user-quotas');
    expect(() => checkOperations(loadOpenApiDocument(), withoutQuotas, documents, PUBLIC_ROUTES)).toThrow('GET /v1.0/{project_id}/kms/user-quotas is in openapi.yaml but has no handler');
    expect(() => checkOperations(loadOpenApiDocument(), operations, documents.slice(1), PUBLIC_ROUTES)).toThrow('GET / is in openapi.yaml but has no handler');
  });

  it('a documented path without a handler fails', () => {
    const withoutDecrypt = operations.filter((op) => op.name !== 'decrypt-datakey');
    expect(() => checkOperations(loadOpenApiDocument(), withoutDecrypt, documents)).toThrow('POST /v1.0/{project_id}/kms/decrypt-datakey is in openapi.yaml but has no handler');
  });

  it('a documented method without a handler fails (a GET beside the POST)', () => {
    const document = loadOpenApiDocument();
    const listKeys = document.paths['/v1.0/{project_id}/kms/list-keys']!;
    const withGet = { paths: { ...document.paths, '/v1.0/{project_id}/kms/list-keys': { ...listKeys, get: listKeys.post } } };
    expect(() => checkOperations(withGet, operations, documents)).toThrow('GET /v1.0/{project_id}/kms/list-keys is in openapi.yaml but has no handler');
  });

  it('a handler of a path the document does not describe fails', () => {
    const document = loadOpenApiDocument();
    const { ['/v1.0/{project_id}/kms/create-key']: _dropped, ...paths } = document.paths;
    expect(() => checkOperations({ paths }, operations, documents)).toThrow('POST /v1.0/{project_id}/kms/create-key has a handler but openapi.yaml does not describe it');
  });

  it('two handlers of one path fail', () => {
    expect(() => checkOperations(loadOpenApiDocument(), [...operations, operations[0]!], documents)).toThrow('two operations handle POST /v1.0/{project_id}/kms/create-key');
  });
});

describe('src/http/openapi.generated.ts', () => {
  it('is what openapi-typescript generates from openapi.yaml now (npm run generate:types)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kms-types-'));
    try {
      const out = path.join(dir, 'openapi.generated.ts');
      execFileSync(path.resolve('node_modules/.bin/openapi-typescript'), [OPENAPI_PATH, '-o', out], { stdio: 'pipe' });
      expect(readFileSync(out, 'utf8')).toBe(readFileSync(path.resolve('src/http/openapi.generated.ts'), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
