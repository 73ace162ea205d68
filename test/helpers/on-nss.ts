// The Jest project `nss` (jest.config.js): its test files make their tokens with NSS's softoken.
process.env.KMS_TEST_PKCS11 = 'nss';
