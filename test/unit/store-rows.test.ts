import { credentialKind, granteeType, jsonStringList, keyRecord, keyState, stringList } from '../../src/store/rows';

/** What both stores hand back is checked once, here, before it becomes a domain record. */
describe('the rows of the stores', () => {
  it('take the domain values and refuse any other, rather than carry it on under a false type', () => {
    expect(keyState('4')).toBe('4');
    expect(() => keyState('9')).toThrow('unknown key state');
    expect(granteeType('domain')).toBe('domain');
    expect(() => granteeType('group')).toThrow('unknown grantee type');
    expect(credentialKind('aksk')).toBe('aksk');
    expect(() => credentialKind('password')).toThrow('unknown credential kind');
  });

  it('read lists of strings from an array (PostgreSQL) or JSON text (SQLite), and nothing else', () => {
    expect(stringList(['kms:*'], 'actions')).toEqual(['kms:*']);
    expect(jsonStringList('["sign","verify"]', 'operations')).toEqual(['sign', 'verify']);
    expect(() => jsonStringList('{"sign":true}', 'operations')).toThrow('operations that is not a list of strings');
    expect(() => jsonStringList('[1]', 'operations')).toThrow('not a list of strings');
    expect(() => stringList('kms:*', 'actions')).toThrow('not a list of strings');
  });

  it('make the key record of a row, its state checked', () => {
    const row = {
      key_id: 'k',
      project_id: 'p',
      key_alias: 'a',
      key_description: '',
      key_spec: 'AES_256',
      key_usage: 'ENCRYPT_DECRYPT',
      origin: 'kms',
      key_state: '2',
      creation_date: 1,
      scheduled_deletion_date: null,
      material_version: 3,
    };
    expect(keyRecord(row)).toMatchObject({ keyId: 'k', projectId: 'p', state: '2', materialVersion: 3, scheduledDeletionDate: null });
    expect(() => keyRecord({ ...row, key_state: '' })).toThrow('unknown key state');
  });
});
