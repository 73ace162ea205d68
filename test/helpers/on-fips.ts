// The Jest project `fips` (jest.config.js): its test files run on the shim's FIPS-style HSM over SoftHSM.
process.env.KMS_TEST_PKCS11 = 'fips';
