/**
 * The golden layout of a customer master key's material in the token: how each object is
 * identified (CKA_ID), labelled (CKA_LABEL) and what it may do, pinned with bytes this test
 * computes itself from the key id and the material version, never with src/hsm/templates.ts (as
 * test/unit/binding.test.ts pins the additional data). The objects are found through a second
 * handle on the module, by those attributes.
 *
 * Tokens outlive releases: every key a service has made is found again by these attributes. A
 * change to how objects are looked up (new key kinds, another store such as PostgreSQL) must keep
 * existing tokens readable, so it must keep finding the objects this test describes. If this test
 * fails, existing tokens would no longer be read: change the lookup, not this test.
 */
import * as pkcs11 from 'pkcs11js';
import { useTestService } from '../helpers/service';
import { SideChannel } from '../helpers/side-channel';

/** CKA_ID: the key id's 16 UUID bytes, then the material version as 4 bytes, big-endian (20 bytes). */
function expectedId(keyId: string, version: number): Buffer {
  const hex = keyId.replace(/-/g, '') + version.toString(16).padStart(8, '0');
  return Buffer.from(hex, 'hex');
}

/** CKA_LABEL: `kms/<key id>/v<version>`, in ASCII, readable in vendor tools. */
function expectedLabel(keyId: string, version: number): Buffer {
  return Buffer.from(`kms/${keyId}/v${version}`, 'ascii');
}

const t = useTestService();
let side: SideChannel;

beforeAll(() => {
  side = new SideChannel(t.config.hsm);
});

describe('the layout of a key material object in the token', () => {
  it('computes the identifiers as written (a fixed example)', () => {
    expect(expectedId('0d0466b0-e727-4d9c-b35d-f84bb474a37f', 0x01020304).toString('hex')).toBe('0d0466b0e7274d9cb35df84bb474a37f01020304');
    expect(expectedLabel('0d0466b0-e727-4d9c-b35d-f84bb474a37f', 12).toString()).toBe('kms/0d0466b0-e727-4d9c-b35d-f84bb474a37f/v12');
  });

  it('is one AES-256 secret key per material version, found by its CKA_ID and by its CKA_LABEL, with these attributes', async () => {
    const kms = t.client();
    const created = await kms.call('create-key', { key_alias: 'golden-layout' });
    expect(created.status).toBe(200);
    const keyId: string = created.body.key_info.key_id;
    expect((await kms.call('rotate-on-demand', { key_id: keyId })).status).toBe(200);

    side.withSession((session) => {
      for (const version of [0, 1]) {
        const id = expectedId(keyId, version);
        const label = expectedLabel(keyId, version);
        const byId = side.find(session, [
          { type: pkcs11.CKA_CLASS, value: pkcs11.CKO_SECRET_KEY },
          { type: pkcs11.CKA_TOKEN, value: true },
          { type: pkcs11.CKA_ID, value: id },
        ]);
        expect(byId).toHaveLength(1);
        // The label finds the same single object (nothing else of this key, of any class, carries it).
        const byLabel = side.find(session, [{ type: pkcs11.CKA_LABEL, value: label }]);
        expect(byLabel).toHaveLength(1);
        const handle = byId[0]!;
        expect(byLabel[0]!.equals(handle)).toBe(true);

        const read = side.attributes(session, handle, [
          pkcs11.CKA_CLASS,
          pkcs11.CKA_KEY_TYPE,
          pkcs11.CKA_VALUE_LEN,
          pkcs11.CKA_ID,
          pkcs11.CKA_LABEL,
          pkcs11.CKA_TOKEN,
          pkcs11.CKA_PRIVATE,
          pkcs11.CKA_SENSITIVE,
          pkcs11.CKA_EXTRACTABLE,
          pkcs11.CKA_MODIFIABLE,
          pkcs11.CKA_ENCRYPT,
          pkcs11.CKA_DECRYPT,
          pkcs11.CKA_WRAP,
          pkcs11.CKA_UNWRAP,
        ]);
        const bytes = (type: number): string => (read.get(type) as Buffer).toString('hex');
        // CK_ULONG and CK_BBOOL as the module returns them on this 64-bit little-endian ABI.
        const ulong = (value: number): string => {
          const out = Buffer.alloc(8);
          out.writeBigUInt64LE(BigInt(value));
          return out.toString('hex');
        };
        const yes = '01';
        const no = '00';
        expect({
          class: bytes(pkcs11.CKA_CLASS),
          keyType: bytes(pkcs11.CKA_KEY_TYPE),
          valueLen: bytes(pkcs11.CKA_VALUE_LEN),
          id: bytes(pkcs11.CKA_ID),
          label: bytes(pkcs11.CKA_LABEL),
          token: bytes(pkcs11.CKA_TOKEN),
          private: bytes(pkcs11.CKA_PRIVATE),
          sensitive: bytes(pkcs11.CKA_SENSITIVE),
          extractable: bytes(pkcs11.CKA_EXTRACTABLE),
          modifiable: bytes(pkcs11.CKA_MODIFIABLE),
          encrypt: bytes(pkcs11.CKA_ENCRYPT),
          decrypt: bytes(pkcs11.CKA_DECRYPT),
          wrap: bytes(pkcs11.CKA_WRAP),
          unwrap: bytes(pkcs11.CKA_UNWRAP),
        }).toEqual({
          class: ulong(0x4), // CKO_SECRET_KEY
          keyType: ulong(0x1f), // CKK_AES
          valueLen: ulong(32),
          id: id.toString('hex'),
          label: label.toString('hex'),
          token: yes,
          private: yes,
          sensitive: yes,
          extractable: no,
          modifiable: no,
          encrypt: yes,
          decrypt: yes,
          wrap: no,
          unwrap: no,
        });
      }
    });
  });
});
