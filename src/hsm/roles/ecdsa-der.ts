/**
 * ECDSA signatures between PKCS#11's form (r‖s, each as long as the curve's order) and the DER
 * form X.509, Huawei's API and Node's crypto use (a SEQUENCE of the INTEGERs r and s; RFC 3279
 * §2.2.3).
 */

/** r‖s as DER. */
export function ecdsaToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const r = derInteger(raw.subarray(0, half));
  const s = derInteger(raw.subarray(half));
  return Buffer.concat([Buffer.from([0x30]), derLength(r.length + s.length), r, s]);
}

/** A DER signature as r‖s of `bytes` each; undefined for anything that is not one (a verification then fails, it does not throw). */
export function ecdsaFromDer(der: Buffer, bytes: number): Buffer | undefined {
  if (der[0] !== 0x30) return undefined;
  const sequence = readLength(der, 1);
  if (!sequence || sequence.end !== der.length) return undefined;
  const out = Buffer.alloc(2 * bytes);
  let at = sequence.start;
  for (const slot of [0, 1]) {
    if (der[at] !== 0x02) return undefined;
    const integer = readLength(der, at + 1);
    if (!integer || integer.end > sequence.end) return undefined;
    let value = der.subarray(integer.start, integer.end);
    // Positive and minimal, as DER has it: a leading zero only before a byte with its high bit set.
    if (value.length === 0 || value[0]! & 0x80) return undefined;
    if (value[0] === 0 && value.length > 1) {
      if (!(value[1]! & 0x80)) return undefined;
      value = value.subarray(1);
    }
    if (value.length > bytes) return undefined;
    value.copy(out, slot * bytes + bytes - value.length);
    at = integer.end;
  }
  return at === der.length ? out : undefined;
}

function derInteger(value: Buffer): Buffer {
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  const trimmed = value.subarray(start);
  const body = trimmed[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
  return Buffer.concat([Buffer.from([0x02]), derLength(body.length), body]);
}

function derLength(length: number): Buffer {
  return length < 0x80 ? Buffer.from([length]) : Buffer.from([0x81, length]);
}

/** The content's bounds of the DER length at `at` (short form, or the one-byte long form: enough for any signature of ours). */
function readLength(der: Buffer, at: number): { start: number; end: number } | undefined {
  const first = der[at];
  if (first === undefined) return undefined;
  if (first < 0x80) return { start: at + 1, end: at + 1 + first };
  const second = der[at + 1];
  if (first !== 0x81 || second === undefined || second < 0x80) return undefined;
  return { start: at + 2, end: at + 2 + second };
}
