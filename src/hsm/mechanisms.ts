import type * as pkcs11 from 'pkcs11js';
import type { MechanismChoice, MechanismNeed } from './key-kinds/key-kind';

/** The names of the mechanisms in `required` (number → name) that `offered` (a token's C_GetMechanismList) lacks. */
export function missingMechanisms(offered: ReadonlySet<number>, required: ReadonlyMap<number, string>): string[] {
  return [...required].filter(([mechanism]) => !offered.has(mechanism)).map(([, name]) => name);
}

/**
 * The token's mechanisms as C_GetMechanismList and C_GetMechanismInfo report them, read once at
 * start-up: which a key kind can use, with the flags and the key size it needs.
 */
export class MechanismTable {
  constructor(private readonly infos: ReadonlyMap<number, pkcs11.MechanismInfo>) {}

  /** The mechanisms offered (C_GetMechanismList). */
  offered(): ReadonlySet<number> {
    return new Set(this.infos.keys());
  }

  /** Whether the token offers `need` with its flags and key size. */
  has(need: MechanismNeed): boolean {
    const info = this.infos.get(need.type);
    if (!info || (info.flags & need.flags) !== need.flags) return false;
    return need.keySize === undefined || (need.keySize >= info.minKeySize && need.keySize <= info.maxKeySize);
  }

  /** The first mechanism of `choice` the token offers, or undefined. */
  choose(choice: MechanismChoice): MechanismNeed | undefined {
    return choice.find((need) => this.has(need));
  }

  /** Why `need` is not usable, for the log: "CKM_X missing", "CKM_X lacks a flag", "CKM_X: 4096 outside 512..2048". */
  why(need: MechanismNeed): string {
    const info = this.infos.get(need.type);
    if (!info) return `${need.name} not offered`;
    if ((info.flags & need.flags) !== need.flags) return `${need.name} lacks flags 0x${(need.flags & ~info.flags).toString(16)}`;
    return `${need.name} key size ${need.keySize} outside ${info.minKeySize}..${info.maxKeySize}`;
  }
}
