import type { KeyDetails } from './api-types';
import type { KeyRecord } from '../domain/keys';

/**
 * The API's view of a key record. Dates are milliseconds since the epoch, as strings;
 * `materialExpiresAt` is an imported key's material expiry (expiration_time), or null.
 */
export function keyDetails(record: KeyRecord, realm: string, rotationEnabled: boolean, materialExpiresAt: number | null = null): KeyDetails {
  return {
    key_id: record.keyId,
    // Until identities land (a domain owns projects), a project is its own domain.
    domain_id: record.projectId,
    key_alias: record.alias,
    realm,
    key_spec: record.keySpec,
    key_usage: record.keyUsage,
    key_description: record.description,
    creation_date: String(record.creationDate),
    scheduled_deletion_date: record.scheduledDeletionDate === null ? '' : String(record.scheduledDeletionDate),
    key_state: record.state,
    default_key_flag: '0',
    key_type: '1',
    expiration_time: materialExpiresAt === null ? '' : String(materialExpiresAt),
    origin: record.origin,
    // A string here, as the API's KeyDetails has it (get-key-rotation-status answers a boolean).
    key_rotation_enabled: rotationEnabled ? 'true' : 'false',
    sys_enterprise_project_id: '0',
    keystore_id: '0',
  };
}
