/**
 * The permission names are one list (src/identity/permissions.ts) that the operations declare
 * theirs from, and that a credential's patterns are checked against.
 */
import type { Operation } from '../../src/http/operation';
import { allOperations, type OperationServices } from '../../src/http/routes/all-operations';
import { actionPatternProblem, PERMISSIONS } from '../../src/identity/permissions';

/** The service's operations; their handlers are never called here. */
const operations: Operation[] = allOperations({} as OperationServices);

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
      `kms:bogus matches no permission; the permissions are ${PERMISSIONS.join(', ')}, with * as a wildcard (kms:*, kms:cmk:*, kms:dek:*, kms:grant:*, kms:alias:*, kms:cmkTag:*)`,
    );
    expect(actionPatternProblem(['kms:cmk:Create', 'iam:*'])).toMatch(/^kms:cmk:Create, iam:\* match no permission; /);
    expect(actionPatternProblem(['rm -rf'])).toMatch(/^not an action pattern: rm -rf; the permissions are /);
  });
});
