/** The names of the mechanisms in `required` (number → name) that `offered` (a token's C_GetMechanismList) lacks. */
export function missingMechanisms(offered: ReadonlySet<number>, required: ReadonlyMap<number, string>): string[] {
  return [...required].filter(([mechanism]) => !offered.has(mechanism)).map(([, name]) => name);
}
