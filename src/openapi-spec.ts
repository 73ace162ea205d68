import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { isKmsCode, type KmsCode } from './errors';

/** openapi.yaml at the repository root: the one description of the API's contract. */
export const OPENAPI_PATH = path.resolve(__dirname, '..', 'openapi.yaml');

interface SchemaObject {
  $ref?: string;
  properties?: Record<string, SchemaObject>;
  'x-kms-error-code'?: string;
}

export interface OpenApiDocument {
  paths: Record<string, Partial<Record<'post' | 'delete', { requestBody?: { content?: Record<string, { schema?: SchemaObject }> } }>>>;
  components: { schemas: Record<string, SchemaObject> };
}

/** For each route (openapi.yaml's path, e.g. "/v1.0/{project_id}/kms/create-key"), the KMS code each body field's failure gets. */
export type FieldErrorCodes = ReadonlyMap<string, ReadonlyMap<string, KmsCode>>;

export function loadOpenApiDocument(file = OPENAPI_PATH): OpenApiDocument {
  return parse(readFileSync(file, 'utf8')) as OpenApiDocument;
}

function resolve(document: OpenApiDocument, schema: SchemaObject | undefined): SchemaObject | undefined {
  const ref = schema?.$ref;
  if (!ref) return schema;
  const name = ref.replace('#/components/schemas/', '');
  return document.components.schemas[name];
}

/** Reads every `x-kms-error-code` of every request body field; fails fast on a code the catalogue lacks. */
export function fieldErrorCodes(document: OpenApiDocument): FieldErrorCodes {
  const byRoute = new Map<string, Map<string, KmsCode>>();
  for (const [route, item] of Object.entries(document.paths)) {
    const fields = new Map<string, KmsCode>();
    // A path's POST and DELETE bodies (create-alias and delete-alias share …/aliases) share its
    // map: a field both name must mean the same there (key_id does).
    for (const method of ['post', 'delete'] as const) {
      const body = resolve(document, item[method]?.requestBody?.content?.['application/json']?.schema);
      for (const [field, property] of Object.entries(body?.properties ?? {})) {
        const code = resolve(document, property)?.['x-kms-error-code'];
        if (code === undefined) continue;
        if (!isKmsCode(code)) throw new Error(`openapi.yaml: ${route} ${field} names unknown error code ${code}`);
        if (fields.has(field) && fields.get(field) !== code) throw new Error(`openapi.yaml: ${route} ${field} names two error codes`);
        fields.set(field, code);
      }
    }
    byRoute.set(route, fields);
  }
  return byRoute;
}
