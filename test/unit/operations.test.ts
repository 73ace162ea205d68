/**
 * The operations and openapi.yaml describe one API: start-up fails when they disagree either way,
 * and the types the handlers are written against are generated from the document as it is.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkOperations, type Operation } from '../../src/http/operation';
import { dataKeyOperations } from '../../src/http/routes/datakeys';
import { dataOperations, type DataOperationsDeps } from '../../src/http/routes/data';
import { keyOperations } from '../../src/http/routes/keys';
import { rotationOperations } from '../../src/http/routes/rotation';
import type { DataKeyService } from '../../src/kms/datakey-service';
import type { KeyService } from '../../src/kms/key-service';
import type { RotationService } from '../../src/kms/rotation-service';
import { loadOpenApiDocument, OPENAPI_PATH } from '../../src/openapi-spec';

/** The service's operations; their handlers are never called here. */
const operations: Operation[] = [...keyOperations({} as KeyService), ...dataKeyOperations({} as DataKeyService), ...dataOperations({} as DataOperationsDeps), ...rotationOperations({} as RotationService)];

describe('the operations against openapi.yaml', () => {
  it('agree: every documented endpoint has a handler, and every handler a documented endpoint', () => {
    expect(() => checkOperations(loadOpenApiDocument(), operations)).not.toThrow();
  });

  it('a documented path without a handler fails', () => {
    const withoutDecrypt = operations.filter((op) => op.name !== 'decrypt-datakey');
    expect(() => checkOperations(loadOpenApiDocument(), withoutDecrypt)).toThrow('POST /v1.0/{project_id}/kms/decrypt-datakey is in openapi.yaml but has no handler');
  });

  it('a documented method without a handler fails (a GET beside the POST)', () => {
    const document = loadOpenApiDocument();
    const listKeys = document.paths['/v1.0/{project_id}/kms/list-keys']!;
    const withGet = { paths: { ...document.paths, '/v1.0/{project_id}/kms/list-keys': { ...listKeys, get: listKeys.post } } };
    expect(() => checkOperations(withGet, operations)).toThrow('GET /v1.0/{project_id}/kms/list-keys is in openapi.yaml but has no handler');
  });

  it('a handler of a path the document does not describe fails', () => {
    const document = loadOpenApiDocument();
    const { ['/v1.0/{project_id}/kms/create-key']: _dropped, ...paths } = document.paths;
    expect(() => checkOperations({ paths }, operations)).toThrow('POST /v1.0/{project_id}/kms/create-key has a handler but openapi.yaml does not describe it');
  });

  it('two handlers of one path fail', () => {
    expect(() => checkOperations(loadOpenApiDocument(), [...operations, operations[0]!])).toThrow('two operations handle POST /v1.0/{project_id}/kms/create-key');
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
