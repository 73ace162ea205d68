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

describe('the additional data encoding', () => {
  // Every blob ever issued was sealed under these bytes: a change here would make them all unopenable.
  it('is byte for byte the encoding blobs were sealed with', () => {
    expect(
      encodeBinding({ purpose: 'datakey', keyId: '0d0466b0-e727-4d9e-b0fc-0ae7f1c4fbf1', materialVersion: 3, projectId: 'a1b2', context: '{"k":"vä"}', aad: 'ü' }).toString('hex'),
    ).toBe(
      '000000206875617765692d6b6d732d636f6d70617469626c652f646174616b65792f76310000002430643034363662302d653732372d346439652d623066632d306165376631633466626631000000013300000004613162320000000b7b226b223a2276c3a4227d00000002c3bc',
    );
    expect(encodeBinding({ purpose: 'data', keyId: 'k', materialVersion: 0, projectId: 'p', context: '', aad: '' }).toString('hex')).toBe(
      '0000001d6875617765692d6b6d732d636f6d70617469626c652f646174612f7631000000016b000000013000000001700000000000000000',
    );
  });
});
