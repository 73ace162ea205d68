import type { ImportService } from '../../kms/import-service';
import { operation, type Operation } from '../operation';

/** Importing key material (origin external keys), with the IAM actions Huawei's permissions page names. */
export function importOperations(imports: ImportService): Operation[] {
  return [
    operation('/v1.0/{project_id}/kms/get-parameters-for-import', 'kms:cmk:getMaterial', (ctx, body) => imports.getParametersForImport(ctx, body)),
    operation('/v1.0/{project_id}/kms/import-key-material', 'kms:cmk:importMaterial', (ctx, body) => imports.importKeyMaterial(ctx, body)),
    operation('/v1.0/{project_id}/kms/delete-imported-key-material', 'kms:cmk:deleteMaterial', (ctx, body) => imports.deleteImportedKeyMaterial(ctx, body)),
  ];
}
