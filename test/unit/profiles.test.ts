import * as pkcs11 from 'pkcs11js';
import { NO_OVERRIDES } from '../../src/hsm/profile-names';
import { detectProfile, profileFor } from '../../src/hsm/profiles';

const SOFTHSM = { manufacturerID: 'SoftHSM', libraryDescription: 'Implementation of PKCS11' };
const NSS = { manufacturerID: 'Mozilla Foundation', libraryDescription: 'NSS Internal Crypto Services' };
const VENDOR = { manufacturerID: 'Example HSM Inc.', libraryDescription: 'Example PKCS#11 library' };

describe('module profiles', () => {
  it('are detected from C_GetInfo for the modules we know, generic otherwise', () => {
    expect(detectProfile(SOFTHSM.manufacturerID, SOFTHSM.libraryDescription)).toBe('softhsm');
    expect(detectProfile(NSS.manufacturerID, NSS.libraryDescription)).toBe('nss');
    expect(detectProfile(VENDOR.manufacturerID, VENDOR.libraryDescription)).toBe('generic');
  });

  it('call in-process modules inline and any other off the event loop', () => {
    expect(profileFor('auto', SOFTHSM, NO_OVERRIDES).cryptoCalls).toBe('sync');
    expect(profileFor('auto', NSS, NO_OVERRIDES).cryptoCalls).toBe('sync');
    expect(profileFor('auto', VENDOR, NO_OVERRIDES).cryptoCalls).toBe('async');
  });

  it("take SoftHSM's CKR_GENERAL_ERROR from C_Decrypt for a bad tag, and no other module's", () => {
    expect(profileFor('auto', SOFTHSM, NO_OVERRIDES).badTagCodes.has(pkcs11.CKR_GENERAL_ERROR)).toBe(true);
    expect(profileFor('auto', VENDOR, NO_OVERRIDES).badTagCodes.has(pkcs11.CKR_GENERAL_ERROR)).toBe(false);
    expect(profileFor('auto', VENDOR, NO_OVERRIDES).badTagCodes.has(pkcs11.CKR_ENCRYPTED_DATA_INVALID)).toBe(true);
  });

  it('follow the configured profile over detection, and each configured capability over the profile', () => {
    expect(profileFor('generic', SOFTHSM, NO_OVERRIDES).name).toBe('generic');
    const fips = profileFor('auto', VENDOR, { gcmIv: 'token-params', cryptoCalls: 'sync' });
    expect(fips).toMatchObject({ name: 'generic', gcmIv: 'token-params', cryptoCalls: 'sync' });
    expect(profileFor('auto', NSS, { ...NO_OVERRIDES, gcmIv: 'token-output' })).toMatchObject({ name: 'nss', gcmIv: 'token-output', cryptoCalls: 'sync' });
  });
});
