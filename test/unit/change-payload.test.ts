import { changePayload, readChangePayload } from '../../src/store/postgres/change-payload';

/** The change feed's NOTIFY payload (src/store/postgres/change-payload.ts): the key and when its sender announced it. */
describe('the change feed payload', () => {
  const keyId = '0b2c8f3e-1d2a-4c5b-8e9f-0a1b2c3d4e5f';

  it('carries the key and its time, and "anything" with its time', () => {
    expect(readChangePayload(changePayload(keyId, 1765100000123))).toEqual({ keyId, sentAtMs: 1765100000123 });
    expect(readChangePayload(changePayload('', 1765100000123))).toEqual({ keyId: undefined, sentAtMs: 1765100000123 });
  });

  it('reads a payload without a time as that key, or anything, at an unknown time', () => {
    expect(readChangePayload(keyId)).toEqual({ keyId, sentAtMs: undefined });
    expect(readChangePayload('')).toEqual({ keyId: undefined, sentAtMs: undefined });
    expect(readChangePayload(undefined)).toEqual({ keyId: undefined, sentAtMs: undefined });
  });

  it('never takes what is not a time for one', () => {
    expect(readChangePayload(`${keyId}@`)).toEqual({ keyId: `${keyId}@`, sentAtMs: undefined });
    expect(readChangePayload(`${keyId}@12x`)).toEqual({ keyId: `${keyId}@12x`, sentAtMs: undefined });
  });
});
