/**
 * The permission names are one list (src/identity/permissions.ts) that the operations declare
 * theirs from, and that a credential's patterns are checked against.
 */
import { dataKeyOperations } from '../../src/http/routes/datakeys';
import { dataOperations, type DataOperationsDeps } from '../../src/http/routes/data';
import { grantOperations } from '../../src/http/routes/grants';
import { keyOperations } from '../../src/http/routes/keys';
import { quotaOperations } from '../../src/http/routes/quotas';
import { rotationOperations } from '../../src/http/routes/rotation';
import { actionPatternProblem, PERMISSIONS } from '../../src/identity/permissions';
import type { DataKeyService } from '../../src/kms/datakey-service';
import type { GrantService } from '../../src/kms/grant-service';
import type { KeyService } from '../../src/kms/key-service';
import type { QuotaService } from '../../src/kms/quota-service';
import type { RotationService } from '../../src/kms/rotation-service';

/** The service's operations; their handlers are never called here. */
const operations = [
  ...keyOperations({} as KeyService),
  ...dataKeyOperations({} as DataKeyService),
  ...dataOperations({} as DataOperationsDeps),
  ...grantOperations({} as GrantService),
  ...quotaOperations({} as QuotaService),
  ...rotationOperations({} as RotationService),
];

describe('the permission names', () => {
  it('are exactly the permissions the operations ask for, each once', () => {
    expect(new Set(PERMISSIONS).size).toBe(PERMISSIONS.length);
    expect([...new Set(operations.map((op) => op.action))].sort()).toEqual([...PERMISSIONS].sort());
  });

  it('refuse a credential pattern that allows none of them, naming them and the wildcards', () => {
    for (const accepted of [['kms:*'], ['kms:cmk:*'], ['kms:dek:*', 'kms:grant:list'], ['kms:cmk:get*'], ['*']]) {
      expect(actionPatternProblem(accepted)).toBeUndefined();
    }
    expect(actionPatternProblem(['kms:cmk:list', 'kms:bogus'])).toBe(
      `kms:bogus matches no permission; the permissions are ${PERMISSIONS.join(', ')}, with * as a wildcard (kms:*, kms:cmk:*, kms:dek:*, kms:grant:*)`,
    );
    expect(actionPatternProblem(['kms:cmk:Create', 'iam:*'])).toMatch(/^kms:cmk:Create, iam:\* match no permission; /);
    expect(actionPatternProblem(['rm -rf'])).toMatch(/^not an action pattern: rm -rf; the permissions are /);
  });
});
