/**
 * Every route's request validator is compiled when the app is built: a contract that
 * express-openapi-validator cannot load or compile fails the start in one line, instead of
 * answering 500 on the first request of each broken operation.
 */
import { buildApp, type AppDeps } from '../../src/app';
import type { AuditSink } from '../../src/audit/audit-sink';
import { Readiness } from '../../src/health/readiness';
import type { OperationServices } from '../../src/http/routes/all-operations';
import type { Authenticator } from '../../src/identity/authenticator';
import { createLogger } from '../../src/logger';
import { loadOpenApiDocument, type OpenApiDocument } from '../../src/openapi-spec';
import { StartError } from '../../src/start-error';

/** The app's dependencies: nothing of them is called while the app is built. */
function deps(contract: OpenApiDocument): AppDeps {
  const logger = createLogger('silent');
  const audit: AuditSink = { checkWritable() {}, append: () => Promise.resolve(undefined), authenticationFailed() {}, close: () => Promise.resolve() };
  const readiness = new Readiness({ hsm: { ping: () => Promise.resolve() }, database: () => Promise.resolve(), audit() {}, draining: () => false, deadlineMs: 1000, logger });
  return { ...({} as OperationServices), authenticator: {} as Authenticator, audit, logger, readiness, bodyLimitBytes: 65536, contract };
}

/** openapi.yaml with one schema of components/schemas replaced. */
function withSchema(name: string, schema: object): OpenApiDocument {
  const document = loadOpenApiDocument();
  return { ...document, components: { ...document.components, schemas: { ...document.components.schemas, [name]: schema } } };
}

async function startFailure(contract: OpenApiDocument): Promise<StartError> {
  const failure: unknown = await buildApp(deps(contract)).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(failure instanceof StartError)) throw new Error(`expected a StartError, got ${String(failure)}`);
  expect(failure.message).not.toContain('\n');
  return failure;
}

describe('the contract compiled at start-up', () => {
  it('builds the app on openapi.yaml as it is', async () => {
    await expect(buildApp(deps(loadOpenApiDocument()))).resolves.toBeDefined();
  });

  it('fails on a body schema the validator cannot compile, naming the operation (a pattern that is a regular expression, but not a Unicode one)', async () => {
    const failure = await startFailure(withSchema('KeyAlias', { type: 'string', pattern: '^a\\-b$' }));
    expect(failure.message).toBe('openapi.yaml: POST /v1.0/{project_id}/kms/create-key does not compile: Invalid regular expression: /^a\\-b$/u: Invalid escape');
  });

  it('fails on a document that is not valid OpenAPI, in one line, and prints nothing of its own', async () => {
    const printed = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const failure = await startFailure(withSchema('KeyAlias', { type: 'string', pattern: '^[a-z' }));
      expect(failure.message).toMatch(/^openapi\.yaml is not a valid OpenAPI 3\.0 document: \/components\/schemas\/KeyAlias\/pattern must match format "regex"/);
      expect(printed).not.toHaveBeenCalled();
    } finally {
      printed.mockRestore();
    }
  });

  it('fails on a reference to a schema the document does not have', async () => {
    const failure = await startFailure(withSchema('KeyAlias', { $ref: '#/components/schemas/NoSuchSchema' }));
    expect(failure.message).toMatch(/^openapi\.yaml: .* does not compile: \S/);
  });
});
