/**
 * The bytes of canonical base64, or undefined: Node's decoder skips what is not base64 and takes
 * missing padding, so a field is taken only in the one spelling its bytes encode back to. The
 * caller answers with its own code and length rule.
 */
export function strictBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}
