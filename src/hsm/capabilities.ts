import type * as graphene from 'graphene-pk11';
import { ckrName } from './ckr';
import type { HsmCapabilities, KeySpec, KeyUsage, SigningAlgorithm } from './hsm';
import type { KeyKind } from './key-kinds/key-kind';
import type { MechanismTable } from './mechanisms';
import { SIGNATURE_ALGORITHMS } from './roles/signature-algorithms';

/**
 * What the module can do for each key kind, found once at start-up: each kind's generation and
 * usages against the mechanism table (C_GetMechanismList and C_GetMechanismInfo: flags and key
 * sizes), and each kind's probe (a curve; a secret's length) on `session`. A usage counts only
 * when every algorithm of it can be done (a key that signs with only some of its spec's algorithms
 * would fail later, at first use).
 */
export async function detectCapabilities(kinds: Iterable<KeyKind>, table: MechanismTable, session: graphene.Session): Promise<HsmCapabilities> {
  const specs = new Map<KeySpec, ReadonlySet<KeyUsage>>();
  const missing: string[] = [];
  for (const kind of kinds) {
    const generation = kind.generation.filter((need) => !table.has(need));
    if (generation.length > 0) {
      missing.push(`${kind.spec}: ${generation.map((need) => table.why(need)).join(', ')}`);
      continue;
    }
    if (kind.probe) {
      try {
        await kind.probe(session);
      } catch (error) {
        missing.push(`${kind.spec}: the module cannot generate it (${ckrName(error)})`);
        continue;
      }
    }
    const usages = new Set<KeyUsage>();
    for (const [usage, choices] of kind.usages) {
      const lacking = choices.filter((choice) => table.choose(choice) === undefined);
      if (lacking.length === 0) usages.add(usage);
      else missing.push(`${kind.spec} ${usage}: ${lacking.map((choice) => choice.map((need) => table.why(need)).join(' and ')).join(', ')}`);
    }
    if (usages.size > 0) specs.set(kind.spec, usages);
  }
  const hashedInService = new Set<SigningAlgorithm>();
  for (const [name, algorithm] of Object.entries(SIGNATURE_ALGORITHMS) as Array<[SigningAlgorithm, (typeof SIGNATURE_ALGORITHMS)[SigningAlgorithm]]>) {
    if (algorithm.combined && !table.has(algorithm.combined) && table.has(algorithm.direct)) hashedInService.add(name);
  }
  return { specs, missing, hashedInService };
}

/** The capabilities as a log line's fields: each spec with its usages, and the algorithms the service hashes for. */
export function describeCapabilities(capabilities: HsmCapabilities): Record<string, unknown> {
  return {
    keySpecs: Object.fromEntries([...capabilities.specs].map(([spec, usages]) => [spec, [...usages]])),
    unsupported: capabilities.missing,
    hashedInService: [...capabilities.hashedInService],
  };
}
