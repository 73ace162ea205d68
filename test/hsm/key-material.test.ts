import * as pkcs11 from 'pkcs11js';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';

const t = useTestService();
let side: SideChannel;

beforeAll(() => {
  side = new SideChannel(t.config.hsm);
});

describe('a customer master key in the token', () => {
  it('is a private, sensitive, never-extractable, unmodifiable AES-256 token object that can only encrypt and decrypt', async () => {
    const created = await t.client().call('create-key', { key_alias: 'attributes' });
    const keyId: string = created.body.key_info.key_id;

    side.withSession((session) => {
      const handle = side.findKey(session, { keyId, version: 0 });
      expect(handle).toBeDefined();
      const attributes = side.attributes(session, handle!, [
        pkcs11.CKA_CLASS,
        pkcs11.CKA_KEY_TYPE,
        pkcs11.CKA_VALUE_LEN,
        pkcs11.CKA_TOKEN,
        pkcs11.CKA_PRIVATE,
        pkcs11.CKA_SENSITIVE,
        pkcs11.CKA_ALWAYS_SENSITIVE,
        pkcs11.CKA_EXTRACTABLE,
        pkcs11.CKA_NEVER_EXTRACTABLE,
        pkcs11.CKA_MODIFIABLE,
        pkcs11.CKA_ENCRYPT,
        pkcs11.CKA_DECRYPT,
        pkcs11.CKA_WRAP,
        pkcs11.CKA_UNWRAP,
        pkcs11.CKA_SIGN,
        pkcs11.CKA_DERIVE,
        pkcs11.CKA_LABEL,
      ]);
      const bool = (type: number) => (attributes.get(type) as Buffer)[0] === 1;
      const ulong = (type: number) => Number((attributes.get(type) as Buffer).readBigUInt64LE(0));
      expect(ulong(pkcs11.CKA_CLASS)).toBe(pkcs11.CKO_SECRET_KEY);
      expect(ulong(pkcs11.CKA_KEY_TYPE)).toBe(pkcs11.CKK_AES);
      expect(ulong(pkcs11.CKA_VALUE_LEN)).toBe(32);
      expect({
        token: bool(pkcs11.CKA_TOKEN),
        private: bool(pkcs11.CKA_PRIVATE),
        sensitive: bool(pkcs11.CKA_SENSITIVE),
        alwaysSensitive: bool(pkcs11.CKA_ALWAYS_SENSITIVE),
        extractable: bool(pkcs11.CKA_EXTRACTABLE),
        neverExtractable: bool(pkcs11.CKA_NEVER_EXTRACTABLE),
        modifiable: bool(pkcs11.CKA_MODIFIABLE),
        encrypt: bool(pkcs11.CKA_ENCRYPT),
        decrypt: bool(pkcs11.CKA_DECRYPT),
        wrap: bool(pkcs11.CKA_WRAP),
        unwrap: bool(pkcs11.CKA_UNWRAP),
        sign: bool(pkcs11.CKA_SIGN),
        derive: bool(pkcs11.CKA_DERIVE),
      }).toEqual({
        token: true,
        private: true,
        sensitive: true,
        alwaysSensitive: true,
        extractable: false,
        neverExtractable: true,
        modifiable: false,
        encrypt: true,
        decrypt: true,
        wrap: false,
        unwrap: false,
        sign: false,
        derive: false,
      });
      expect((attributes.get(pkcs11.CKA_LABEL) as Buffer).toString()).toBe(`kms/${keyId}/v0`);
      expect(() => side.readValue(session, handle!)).toThrow(expect.objectContaining({ code: pkcs11.CKR_ATTRIBUTE_SENSITIVE }));
    });
  });

  it('gets its own CKA_ID, distinct from every other key', async () => {
    const client = t.client();
    const ids: string[] = [];
    for (const alias of ['unique-1', 'unique-2']) ids.push((await client.call('create-key', { key_alias: alias })).body.key_info.key_id);
    side.withSession((session) => {
      const [first, second] = ids.map((keyId) => side.findKey(session, { keyId, version: 0 }));
      const idOf = (handle: Buffer) => side.attributes(session, handle, [pkcs11.CKA_ID]).get(pkcs11.CKA_ID) as Buffer;
      expect(idOf(first!).equals(idOf(second!))).toBe(false);
    });
  });
});
