import { credentialIdOf, principalIdOf } from '../../src/identity/principal-id';

describe('principal ids (what grants name a credential by)', () => {
  it('are an access key itself, and a token id without its hyphen, both within the API pattern', () => {
    expect(principalIdOf('AK1B2C3D4E5F6G7H8I9J')).toBe('AK1B2C3D4E5F6G7H8I9J');
    expect(principalIdOf('tok-0a1b2c3d4e5f6a7b')).toBe('tok0a1b2c3d4e5f6a7b');
    for (const id of ['AK1B2C3D4E5F6G7H8I9J', 'tok-0a1b2c3d4e5f6a7b']) expect(principalIdOf(id)).toMatch(/^[a-zA-Z0-9]{1,64}$/);
  });

  it('lead back to the credential they name, and to none for anything else', () => {
    expect(credentialIdOf('AK1B2C3D4E5F6G7H8I9J')).toBe('AK1B2C3D4E5F6G7H8I9J');
    expect(credentialIdOf('tok0a1b2c3d4e5f6a7b')).toBe('tok-0a1b2c3d4e5f6a7b');
    for (const other of ['projectc', 'tok0A1B2C3D4E5F6A7B', 'tok-0a1b2c3d4e5f6a7b', 'ak1b2c3d4e5f6g7h8i9j', '']) expect(credentialIdOf(other)).toBeUndefined();
  });
});
