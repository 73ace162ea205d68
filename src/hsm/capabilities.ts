import type * as graphene from 'graphene-pk11';
import * as pkcs11 from 'pkcs11js';
import { ckrName } from './ckr';
import type { AsymmetricEncryptionAlgorithm, HsmAlgorithm, HsmCapabilities, KeySpec, KeyUsage, MacAlgorithm, SigningAlgorithm, WrappingAlgorithm } from './hsm';
import { KEY_KINDS } from './key-kinds';
import { MAC_MECHANISMS } from './key-kinds/hmac';
import type { KeyKind, MechanismNeed } from './key-kinds/key-kind';
import type { MechanismTable } from './mechanisms';
import { OAEP, probeOaep } from './roles/asymmetric-decryption';
import { probePrivateKeyImport, probeUnwrap, withProbeTemporaryKey, WRAPPING_KEY_BITS, type PrivateKeyImporting } from './roles/key-import';
import { isImportableFamily, PAD_WRAP_MECHANISMS } from './roles/private-key-import';
import { SIGNATURE_ALGORITHMS } from './roles/signature-algorithms';
import { familyOf } from './roles/signing';

/**
 * What the module can do for each key kind, found once at start-up: each kind's generation and
 * usages against the mechanism table (C_GetMechanismList and C_GetMechanismInfo: flags and key
 * sizes), and each kind's probe (a curve; a secret's length) on `session`. A usage counts only
 * when every algorithm of it can be done (a key that signs with only some of its spec's algorithms
 * would fail later, at first use), except RSA's ENCRYPT_DECRYPT, which counts when one OAEP hash
 * can be done (SoftHSM 2.6 has SHA-1 only): each algorithm is listed, and requests are checked
 * against that list.
 */
/** The capabilities, and how this module imports private keys (the role's; not the seam's business). */
export interface Pkcs11Capabilities extends HsmCapabilities {
  readonly privateKeyImport?: PrivateKeyImporting;
}

export async function detectCapabilities(kinds: Iterable<KeyKind>, table: MechanismTable, session: graphene.Session): Promise<Pkcs11Capabilities> {
  const specs = new Map<KeySpec, Set<KeyUsage>>();
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
  const algorithms = new Set<HsmAlgorithm>();
  for (const [name, algorithm] of Object.entries(SIGNATURE_ALGORITHMS) as Array<[SigningAlgorithm, (typeof SIGNATURE_ALGORITHMS)[SigningAlgorithm]]>) {
    if ([...specs].some(([spec, usages]) => usages.has('SIGN_VERIFY') && familyOf(spec) === algorithm.family)) algorithms.add(name);
  }
  for (const [name, mac] of Object.entries(MAC_MECHANISMS) as Array<[MacAlgorithm, (typeof MAC_MECHANISMS)[MacAlgorithm]]>) {
    if (table.has({ type: mac.type, name: mac.name, flags: pkcs11.CKF_SIGN | pkcs11.CKF_VERIFY })) algorithms.add(name);
  }
  // RSA's ENCRYPT_DECRYPT (AES_256's is AES-GCM, checked at start-up).
  const rsaDecrypting = [...specs].filter(([spec, usages]) => usages.has('ENCRYPT_DECRYPT') && familyOf(spec) === 'RSA');
  if (rsaDecrypting.length > 0) {
    for (const name of Object.keys(OAEP) as AsymmetricEncryptionAlgorithm[]) {
      let taken: boolean;
      try {
        taken = probeOaep(session, name);
      } catch (error) {
        // A probe that fails otherwise (a module that will not take a public key object from the
        // caller) must not stop the start: the algorithm is only not offered.
        missing.push(`${name}: the probe failed (${ckrName(error)})`);
        continue;
      }
      if (taken) algorithms.add(name);
      else missing.push(`${name}: the module refuses OAEP with its hash`);
    }
    if (!(['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'] as const).some((name) => algorithms.has(name))) {
      for (const [spec, usages] of rsaDecrypting) {
        usages.delete('ENCRYPT_DECRYPT');
        missing.push(`${spec} ENCRYPT_DECRYPT: no OAEP hash the module takes`);
      }
    }
  }
  const hashedInService = new Set<SigningAlgorithm>();
  for (const [name, algorithm] of Object.entries(SIGNATURE_ALGORITHMS) as Array<[SigningAlgorithm, (typeof SIGNATURE_ALGORITHMS)[SigningAlgorithm]]>) {
    if (algorithm.combined && !table.has(algorithm.combined) && table.has(algorithm.direct)) hashedInService.add(name);
  }
  for (const [spec, usages] of specs) if (usages.size === 0) specs.delete(spec);
  const wrappingAlgorithms = detectWrapping(table, session, missing);
  const privateKeyImport = detectPrivateKeyImport(table, session, specs, wrappingAlgorithms, missing);
  return { specs, missing, algorithms, hashedInService, wrappingAlgorithms, privateKeySpecs: privateKeyImport?.specs ?? new Set(), privateKeyImport };
}

/** What importing key material needs: RSA-2048 wrapping key pairs, RSA-OAEP unwrapping, and AES-ECB for the material's fingerprint. */
const IMPORT_NEEDS: readonly MechanismNeed[] = [
  { type: pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, name: 'CKM_RSA_PKCS_KEY_PAIR_GEN', flags: pkcs11.CKF_GENERATE_KEY_PAIR, keySize: WRAPPING_KEY_BITS },
  { type: pkcs11.CKM_RSA_PKCS_OAEP, name: 'CKM_RSA_PKCS_OAEP', flags: pkcs11.CKF_UNWRAP, keySize: WRAPPING_KEY_BITS },
  { type: pkcs11.CKM_AES_ECB, name: 'CKM_AES_ECB', flags: pkcs11.CKF_ENCRYPT },
];

/**
 * The wrapping algorithms the module can import with: the mechanisms first, then each OAEP hash
 * by an unwrap done for the purpose (probeUnwrap: the mechanism list cannot say which hashes
 * C_UnwrapKey takes, and they need not be C_Decrypt's). What is missing is added to `missing`.
 */
function detectWrapping(table: MechanismTable, session: graphene.Session, missing: string[]): Set<WrappingAlgorithm> {
  const wrapping = new Set<WrappingAlgorithm>();
  const lacking = IMPORT_NEEDS.filter((need) => !table.has(need));
  if (lacking.length > 0) {
    missing.push(`key import: ${lacking.map((need) => table.why(need)).join(', ')}`);
    return wrapping;
  }
  for (const algorithm of ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'] as const) {
    try {
      if (probeUnwrap(session, algorithm)) wrapping.add(algorithm);
      else missing.push(`key import with ${algorithm}: the module does not unwrap OAEP with its hash`);
    } catch (error) {
      missing.push(`key import with ${algorithm}: the probe failed (${ckrName(error)})`);
    }
  }
  return wrapping;
}

/**
 * Which key pair specs the module can import private keys of, and with which RFC 5649 mechanism:
 * each mechanism the module lists for unwrapping, in PAD_WRAP_MECHANISMS' order, until one imports
 * a key (probePrivateKeyImport), once for RSA (every size) and once per curve. Undefined when none
 * can; what is missing is added to `missing`.
 */
function detectPrivateKeyImport(
  table: MechanismTable,
  session: graphene.Session,
  specs: ReadonlyMap<KeySpec, ReadonlySet<KeyUsage>>,
  wrappingAlgorithms: ReadonlySet<WrappingAlgorithm>,
  missing: string[],
): PrivateKeyImporting | undefined {
  const algorithm = [...wrappingAlgorithms][0];
  const importable = [...specs.keys()].map((spec) => KEY_KINDS.get(spec)).filter((kind): kind is KeyKind => kind !== undefined && isImportableFamily(kind.family));
  if (algorithm === undefined || importable.length === 0) return undefined;
  const mechanisms = PAD_WRAP_MECHANISMS.filter((mechanism) => table.has({ ...mechanism, flags: pkcs11.CKF_UNWRAP }));
  if (mechanisms.length === 0) {
    missing.push(`private key import: none of ${PAD_WRAP_MECHANISMS.map((mechanism) => mechanism.name).join(', ')} (AES key wrap with padding) is offered for unwrapping`);
    return undefined;
  }
  const found = withProbeTemporaryKey(session, algorithm, (temporary) => {
    for (const mechanism of mechanisms) {
      const imported = new Set<KeySpec>();
      // RSA once for every size; each curve on its own (a module may know some curves only).
      const outcomes = new Map<string, boolean>();
      for (const kind of importable) {
        const family = kind.family;
        if (!isImportableFamily(family)) continue;
        const probe = family.name === 'RSA' ? 'RSA' : `EC ${family.curve.node}`;
        let taken = outcomes.get(probe);
        if (taken === undefined) {
          taken = probePrivateKeyImport(session, temporary, mechanism.type, family);
          outcomes.set(probe, taken);
        }
        if (taken) imported.add(kind.spec);
      }
      if (imported.size > 0) return { mechanism, specs: imported };
    }
    return undefined;
  });
  if (found) {
    for (const kind of importable) if (!found.specs.has(kind.spec)) missing.push(`${kind.spec} private key import: the module does not import its private keys with ${found.mechanism.name}`);
    return { mechanism: found.mechanism.type, specs: found.specs };
  }
  missing.push(`private key import: the module imports no private key with ${mechanisms.map((mechanism) => mechanism.name).join(' or ')} (RFC 5649)`);
  return undefined;
}

/** The capabilities as a log line's fields: each spec with its usages, and the algorithms the service hashes for. */
export function describeCapabilities(capabilities: HsmCapabilities): Record<string, unknown> {
  return {
    keySpecs: Object.fromEntries([...capabilities.specs].map(([spec, usages]) => [spec, [...usages]])),
    unsupported: capabilities.missing,
    algorithms: [...capabilities.algorithms],
    hashedInService: [...capabilities.hashedInService],
    wrappingAlgorithms: [...capabilities.wrappingAlgorithms],
    privateKeyImport: [...capabilities.privateKeySpecs],
  };
}
