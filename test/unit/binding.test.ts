import { canonicalContext, checkedAad, encodeBinding, type Binding } from '../../src/kms/binding';

describe('encryption_context canonical form', () => {
  it('sorts keys, so the order a client sends them in does not matter', () => {
    expect(canonicalContext({ b: '2', a: '1' })).toBe('{"a":"1","b":"2"}');
    expect(canonicalContext({ a: '1', b: '2' })).toBe(canonicalContext({ b: '2', a: '1' }));
  });

  it('treats absent and empty alike', () => {
    expect(canonicalContext(undefined)).toBe('');
    expect(canonicalContext({})).toBe('');
  });

  it.each([[['a']], ['text'], [{ a: 1 }], [{ a: { nested: 'x' } }], [{ big: 'x'.repeat(8200) }]])('refuses %j with KMS.0208', (context) => {
    expect(() => canonicalContext(context)).toThrow(expect.objectContaining({ code: 'KMS.0208' }));
  });
});

describe('additional_authenticated_data', () => {
  it('refuses strings that are not well-formed Unicode, which would encode like U+FFFD', () => {
    expect(() => checkedAad('\uD800')).toThrow(expect.objectContaining({ code: 'KMS.0308' }));
    expect(() => canonicalContext({ k: 'a\uDC00' })).toThrow(expect.objectContaining({ code: 'KMS.0208' }));
    expect(checkedAad('\uD83D\uDE00')).toBe('\uD83D\uDE00'); // a proper pair is fine
  });

  it('allows up to 128 bytes of UTF-8, counted in bytes', () => {
    expect(checkedAad('x'.repeat(128))).toHaveLength(128);
    expect(() => checkedAad('é'.repeat(65))).toThrow(expect.objectContaining({ code: 'KMS.0308' }));
  });
});

describe('GCM additional data', () => {
  const base: Binding = { purpose: 'datakey', keyId: 'k', materialVersion: 0, projectId: 'p', context: '', aad: '' };

  it('differs whenever any bound field differs, even when the fields concatenate alike', () => {
    const variants: Binding[] = [
      base,
      { ...base, purpose: 'data' },
      { ...base, keyId: 'k2' },
      { ...base, materialVersion: 1 },
      { ...base, projectId: 'p2' },
      { ...base, context: '{"a":"1"}' },
      { ...base, aad: 'x' },
      { ...base, projectId: 'px', context: '' },
      { ...base, projectId: 'p', context: 'x' },
    ];
    const encoded = new Set(variants.map((binding) => encodeBinding(binding).toString('hex')));
    expect(encoded.size).toBe(variants.length);
  });

  it("keeps the data key's additional data as it always was, so blobs made before purposes still open", () => {
    const encoded = encodeBinding(base);
    const domain = 'huawei-kms-compatible/datakey/v1';
    expect(encoded.readUInt32BE(0)).toBe(domain.length);
    expect(encoded.toString('utf8', 4, 4 + domain.length)).toBe(domain);
  });

  it('names the purpose first, so a data blob and a data key blob never share additional data', () => {
    const data = encodeBinding({ ...base, purpose: 'data' });
    expect(data.toString('utf8', 4, 4 + data.readUInt32BE(0))).toBe('huawei-kms-compatible/data/v1');
    expect(data.equals(encodeBinding(base))).toBe(false);
  });
});
