export { EnvelopeClient, SUITE, DEFAULT_MAX_BODY_SIZE } from './client';
export type { EnvelopeClientOptions, EncryptOptions, EncryptStreamOptions, DecryptOptions, DecryptResult, EnvelopeMetrics } from './client';
export { KmsKeyringNode, DEFAULT_PROVIDER_ID } from './keyring';
export type { KmsKeyringOptions } from './keyring';
export { DEFAULT_CACHE_LIMITS } from './cache';
export type { DataKeyCacheLimits, CacheMetrics } from './cache';
export type { KmsAuth } from './kms-http';
export * from './errors';
export { CommitmentPolicy, EncryptedDataKey, KeyringNode } from '@aws-crypto/material-management-node';
