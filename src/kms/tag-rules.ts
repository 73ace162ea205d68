import { KmsError } from '../errors';

/**
 * The rules of tags, as Huawei KMS sets them (the SDK models' TagItem): one place for the service
 * and the command-line tool. Lengths count Unicode code points ("unicode characters").
 */

/** Tags per key (the SDK model: "一个密钥下最多包含10个key"); also the most tags one request names. */
export const MAX_TAGS_PER_KEY = 10;
const MAX_KEY_LENGTH = 36;
const MAX_VALUE_LENGTH = 43;
/** ASCII control characters (0-31) and `* < > \ =`. */
const FORBIDDEN = /[\u0000-\u001f*<>\\=]/;
/**
 * A UTF-16 surrogate not paired (JSON's "\ud800" escape): no UTF-8 text holds it, so no store could
 * keep it as sent (PostgreSQL refuses it, SQLite would keep U+FFFD instead).
 */
const LONE_SURROGATE = /\p{Cs}/u;

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** A tag key: 1 to 36 characters (KMS.0411), none forbidden (KMS.0406). */
export function checkTagKey(key: string): void {
  const length = codePoints(key);
  if (length < 1 || length > MAX_KEY_LENGTH) throw new KmsError('KMS.0411', { detail: `A tag key is 1 to ${MAX_KEY_LENGTH} characters.` });
  if (FORBIDDEN.test(key) || LONE_SURROGATE.test(key)) {
    throw new KmsError('KMS.0406', { detail: 'A tag key may not hold ASCII control characters, unpaired surrogates or any of * < > \\ =.' });
  }
}

/** A tag value: 0 to 43 characters (KMS.0410), none forbidden (KMS.0405). */
export function checkTagValue(value: string): void {
  if (codePoints(value) > MAX_VALUE_LENGTH) throw new KmsError('KMS.0410', { detail: `A tag value is at most ${MAX_VALUE_LENGTH} characters.` });
  if (FORBIDDEN.test(value) || LONE_SURROGATE.test(value)) {
    throw new KmsError('KMS.0405', { detail: 'A tag value may not hold ASCII control characters, unpaired surrogates or any of * < > \\ =.' });
  }
}

/** A list a request names tags in: 1 to 10 of them (KMS.0401 empty, KMS.0407 longer). */
export function checkTagListSize(length: number): void {
  if (length === 0) throw new KmsError('KMS.0401');
  if (length > MAX_TAGS_PER_KEY) throw new KmsError('KMS.0407', { detail: `A request names at most ${MAX_TAGS_PER_KEY} tags.` });
}

/** Each tag key once in a list (KMS.0412): a key's tag keys are unique. */
export function checkDistinctKeys(keys: readonly string[]): void {
  if (new Set(keys).size !== keys.length) throw new KmsError('KMS.0412', { detail: 'A tag key is named more than once.' });
}
