/**
 * Request and response bodies of the Huawei Cloud KMS v1.0 API, as clients send and read them.
 * Every scalar is a JSON string unless the API says otherwise (list-keys' `total`). openapi.yaml
 * describes the same shapes for validation; these types are what the service code sees after it.
 */

export interface Sequenced {
  sequence?: string;
}

export interface CreateKeyRequest extends Sequenced {
  key_alias: string;
  key_description?: string;
  key_spec?: string;
  key_usage?: string;
  origin?: string;
}

export interface OperateKeyRequest extends Sequenced {
  key_id: string;
}

export interface ListKeysRequest extends Sequenced {
  limit?: string;
  marker?: string;
  key_state?: string;
  key_spec?: string;
}

export interface ScheduleKeyDeletionRequest extends OperateKeyRequest {
  pending_days: string;
}

export interface UpdateKeyAliasRequest extends OperateKeyRequest {
  key_alias: string;
}

export interface UpdateKeyDescriptionRequest extends OperateKeyRequest {
  key_description: string;
}

export interface KeyDetails {
  key_id: string;
  domain_id: string;
  key_alias: string;
  realm: string;
  key_spec: string;
  key_usage: string;
  key_description: string;
  creation_date: string;
  scheduled_deletion_date: string;
  key_state: string;
  default_key_flag: string;
  key_type: string;
  expiration_time: string;
  origin: string;
  key_rotation_enabled: string;
  sys_enterprise_project_id: string;
  keystore_id: string;
}

export interface CreateKeyResponse {
  key_info: { key_id: string; domain_id: string };
}

export interface DescribeKeyResponse {
  key_info: KeyDetails;
}

export interface ListKeysResponse {
  keys: string[];
  key_details: KeyDetails[];
  next_marker: string;
  truncated: string;
  total: number;
}

export interface KeyStateResponse {
  key_info: { key_id: string; key_state: string };
}

export interface DeletionStateResponse {
  key_id: string;
  key_state: string;
}

export interface UpdateKeyAliasResponse {
  key_info: { key_id: string; key_alias: string };
}

export interface UpdateKeyDescriptionResponse {
  key_info: { key_id: string; key_description: string };
}

/** The two ways a caller binds a data key ciphertext to its context. */
export interface BindingFields {
  encryption_context?: Record<string, unknown>;
  additional_authenticated_data?: string;
}

export interface CreateDatakeyRequest extends OperateKeyRequest, BindingFields {
  key_spec?: string;
  datakey_length?: string;
}

export interface CreateDatakeyResponse {
  key_id: string;
  plain_text: string;
  cipher_text: string;
}

export interface CreateDatakeyWithoutPlaintextResponse {
  key_id: string;
  cipher_text: string;
}

export interface EncryptDatakeyRequest extends OperateKeyRequest, BindingFields {
  plain_text: string;
  datakey_plain_length: string;
}

export interface EncryptDatakeyResponse {
  key_id: string;
  cipher_text: string;
  datakey_length: string;
}

export interface DecryptDatakeyRequest extends OperateKeyRequest, BindingFields {
  cipher_text: string;
  datakey_cipher_length: string;
}

export interface DecryptDatakeyResponse {
  data_key: string;
  datakey_length: string;
  datakey_dgst: string;
}
