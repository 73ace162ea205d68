/**
 * The KMS error catalogue: every KMS.* code of the Huawei Cloud KMS v1.0 API with its HTTP status and the
 * message clients see. This is the only place that knows HTTP status numbers for KMS errors; the rest of
 * the code throws {@link KmsError} with a code.
 */

export interface CatalogueEntry {
  readonly status: number;
  readonly message: string;
}

export const KMS_ERRORS = {
  // The API gateway's authentication failure (flat body, 401), as Huawei Cloud's gateway answers it.
  'APIGW.0301': { status: 401, message: 'Incorrect IAM authentication information.' },
  'KMS.0100': { status: 500, message: 'Get-status error.' },
  'KMS.0101': { status: 500, message: 'KMS error.' },
  'KMS.0102': { status: 500, message: 'Abnormal KMS I/O.' },
  'KMS.0103': { status: 500, message: 'A system exception occurred. Contact technical support.' },
  'KMS.0104': { status: 503, message: 'A system exception occurred. Contact technical support.' },
  'KMS.0105': { status: 400, message: 'A system exception occurred. Contact technical support.' },
  'KMS.0106': { status: 400, message: 'It is replica service, readonly api allowed.' },
  'KMS.0201': { status: 400, message: 'Invalid request URL.' },
  'KMS.0202': { status: 400, message: 'Invalid JSON format of the request message.' },
  'KMS.0203': { status: 400, message: 'Request message too long.' },
  'KMS.0204': { status: 400, message: 'Parameters missing in the request message.' },
  'KMS.0205': { status: 400, message: 'Invalid key ID.' },
  'KMS.0206': { status: 400, message: 'Invalid sequence number.' },
  'KMS.0207': { status: 404, message: 'The key does not exist.' },
  'KMS.0208': { status: 400, message: 'Invalid value of value encryption_context.' },
  'KMS.0209': { status: 400, message: 'The key has been disabled.' },
  'KMS.0210': { status: 400, message: 'The key is in Scheduled deletion state and cannot be used.' },
  'KMS.0211': { status: 400, message: 'Cannot perform this operation on Default Master Keys.' },
  'KMS.0212': { status: 400, message: 'Invalid resource type.' },
  'KMS.0214': { status: 400, message: 'The request format is invalid.' },
  'KMS.0215': { status: 405, message: 'Request method not supported.' },
  'KMS.0301': { status: 403, message: 'Invalid or null X-Auth-Token.' },
  'KMS.0302': { status: 403, message: 'Invalid X-Auth-Token.' },
  'KMS.0303': { status: 403, message: 'X-Auth-Token expired.' },
  'KMS.0304': { status: 403, message: 'X-Auth-Token contains the OBT tag and cannot be used to access services.' },
  'KMS.0305': { status: 403, message: 'Invalid X-Auth-Token project name.' },
  'KMS.0306': { status: 403, message: 'No access permissions.' },
  'KMS.0307': { status: 403, message: 'No access permissions.' },
  'KMS.0308': { status: 400, message: 'Invalid parameter.' },
  'KMS.0309': { status: 400, message: 'External keys required.' },
  'KMS.0310': { status: 400, message: 'The key is not in Pending import state.' },
  'KMS.0311': { status: 400, message: 'Failed to decrypt data using the RSA private key.' },
  'KMS.0312': { status: 400, message: 'External keys cannot be rotated.' },
  'KMS.0313': { status: 400, message: 'Key rotation is not enabled.' },
  'KMS.0314': { status: 403, message: 'Real-name authentication is required to access the API.' },
  'KMS.0315': { status: 400, message: 'Invalid partition_id.' },
  'KMS.0316': { status: 404, message: 'No exist partition_id.' },
  'KMS.0317': { status: 400, message: 'The cmk partition is not enabled.' },
  'KMS.0318': { status: 400, message: 'Partition name has exist.' },
  'KMS.0319': { status: 400, message: 'Rotation not supported in the current KMS version.' },
  'KMS.0320': { status: 400, message: 'Resource frozen.' },
  'KMS.0321': { status: 403, message: 'URIs in URL and X-Auth-Token do not match.' },
  'KMS.0322': { status: 403, message: 'The user has no permission to access the partition.' },
  'KMS.0323': { status: 400, message: 'Failed to obtain the partition of the key.' },
  'KMS.0324': { status: 400, message: 'RSA keys cannot be rotated.' },
  'KMS.0325': { status: 400, message: 'The asymmetric key is not support this operation.' },
  'KMS.0326': { status: 403, message: 'No access permissions.' },
  'KMS.0327': { status: 400, message: 'Failed to obtain user permissions.' },
  'KMS.0328': { status: 403, message: 'KMS has been frozen. Renew it and try again.' },
  'KMS.0329': { status: 400, message: 'Hash algorithm does not match the digest length.' },
  'KMS.0330': { status: 403, message: 'User has no permission.' },
  'KMS.0331': { status: 400, message: 'The symmetric key is not support this operation.' },
  'KMS.0332': { status: 400, message: 'This key is not support the signing algorithm.' },
  'KMS.0334': { status: 400, message: 'The cmk is used to encrypt and decrypt.' },
  'KMS.0335': { status: 400, message: 'The cmk is used to sign and verify.' },
  'KMS.0338': { status: 400, message: 'The custom keystore do not support rotation.' },
  'KMS.0339': { status: 400, message: 'The custom keystore do not support import key.' },
  'KMS.0340': { status: 400, message: 'not support keystore.' },
  'KMS.0341': { status: 400, message: 'The hmac key do not support this operation.' },
  'KMS.0401': { status: 400, message: 'Tag list cannot be empty.' },
  'KMS.0402': { status: 400, message: 'Invalid match value.' },
  'KMS.0403': { status: 400, message: 'Invalid match key.' },
  'KMS.0404': { status: 400, message: 'Invalid action.' },
  'KMS.0405': { status: 400, message: 'Invalid tag value.' },
  'KMS.0406': { status: 400, message: 'Invalid tag key.' },
  'KMS.0407': { status: 400, message: 'Invalid tag list size.' },
  'KMS.0408': { status: 400, message: 'Invalid resourceType.' },
  'KMS.0409': { status: 400, message: 'Too many tags.' },
  'KMS.0410': { status: 400, message: 'Invalid tag value length.' },
  'KMS.0411': { status: 400, message: 'Invalid tag key length.' },
  'KMS.0412': { status: 400, message: 'Invalid tag list.' },
  'KMS.0413': { status: 400, message: 'Too many tag values.' },
  'KMS.0414': { status: 400, message: 'Invalid tags.' },
  'KMS.0415': { status: 400, message: 'Invalid matches.' },
  'KMS.0416': { status: 404, message: 'Invalid tag ID.' },
  'KMS.0417': { status: 400, message: 'Invalid offset.' },
  'KMS.0418': { status: 400, message: 'Offset is not required.' },
  'KMS.1101': { status: 400, message: 'Invalid key_alias.' },
  'KMS.1102': { status: 400, message: 'Invalid realm.' },
  'KMS.1103': { status: 400, message: 'Invalid key_description.' },
  'KMS.1104': { status: 400, message: 'Duplicate key aliases.' },
  'KMS.1105': { status: 400, message: 'Too many keys.' },
  'KMS.1108': { status: 400, message: 'Failed to create the default partition for the key.' },
  'KMS.1109': { status: 400, message: 'Failed to create the route for the key.' },
  'KMS.1110': { status: 400, message: 'Invalid alg_type.' },
  'KMS.1114': { status: 400, message: 'EC keys do not support to encrypt/decrypt.' },
  'KMS.1115': { status: 400, message: 'Symmetric keys do not support to sign/verify.' },
  'KMS.1201': { status: 400, message: 'The key is not disabled.' },
  'KMS.1301': { status: 400, message: 'The key is not enabled.' },
  'KMS.1401': { status: 400, message: 'Set the pending deletion period between 7 to 1096 days.' },
  'KMS.1402': { status: 400, message: 'The key is already in Pending deletion state.' },
  'KMS.1404': { status: 400, message: 'This region is not the original region of the key, and it is not allowed to import-key-material.' },
  'KMS.1501': { status: 400, message: 'The key is not in Pending deletion state.' },
  'KMS.1601': { status: 400, message: 'Invalid limit.' },
  'KMS.1602': { status: 400, message: 'marker must be greater than or equals 0.' },
  'KMS.1603': { status: 400, message: 'Invalid offset.' },
  'KMS.1801': { status: 400, message: 'random_data_length must be 512 bits.' },
  'KMS.1802': { status: 400, message: 'random_data_length must be a multiple of 8.' },
  'KMS.1901': { status: 400, message: 'datakey_length must be in the range 8 bits to 8,192 bits.' },
  'KMS.1902': { status: 400, message: 'key_spec can only be AES_128 or AES_256.' },
  'KMS.1903': { status: 400, message: 'datakey_length must be a multiple of 8.' },
  'KMS.1904': { status: 400, message: 'The rsa wrapping data key is over length 1520 bits.' },
  'KMS.2001': { status: 400, message: 'datakey_length must be 512 bits.' },
  'KMS.2101': { status: 400, message: 'Invalid plain_text.' },
  'KMS.2102': { status: 400, message: 'datakey_plain_length must be 64 bytes.' },
  'KMS.2103': { status: 400, message: 'Failed to verify the DEK hash.' },
  'KMS.2104': { status: 400, message: 'The length of plain_text does not match datakey_plain_length.' },
  'KMS.2105': { status: 400, message: 'The symmetric key not support this encryption algorithm.' },
  'KMS.2106': { status: 400, message: 'The rsa key not support this encryption algorithm.' },
  'KMS.2108': { status: 400, message: 'The rsa encryption plain_text is over length.' },
  'KMS.2201': { status: 400, message: 'Invalid cipher_text.' },
  'KMS.2202': { status: 400, message: 'datakey_cipher_length must be 64 bytes.' },
  'KMS.2203': { status: 400, message: 'Failed to verify the DEK hash.' },
  'KMS.2204': { status: 400, message: 'The length of cipher_text does not match datakey_cipher_length.' },
  'KMS.2301': { status: 400, message: 'The quota value is beyond the maximum configurable limit.' },
  'KMS.2302': { status: 400, message: 'New quota value must not less than old.' },
  'KMS.2303': { status: 400, message: 'The quota type is not supported.' },
  'KMS.2304': { status: 400, message: 'Can not update grant quota when no grant has created.' },
  'KMS.2305': { status: 400, message: 'Can not update cmk quota when no cmk has created.' },
  'KMS.2401': { status: 400, message: 'Specify an operation in addition to create-grant.' },
  'KMS.2402': { status: 400, message: 'Invalid user ID.' },
  'KMS.2403': { status: 400, message: 'Failed to create the grant.' },
  'KMS.2404': { status: 400, message: 'Too many CMK grants.' },
  'KMS.2405': { status: 400, message: 'Too many grants.' },
  'KMS.2406': { status: 400, message: 'The basic partition has no right to create grant.' },
  'KMS.2501': { status: 400, message: 'Invalid grant ID.' },
  'KMS.2502': { status: 400, message: 'grant_id and key_id do not match.' },
  'KMS.2601': { status: 400, message: 'Token expired.' },
  'KMS.2602': { status: 400, message: 'Key expiration time must be later than the current time.' },
  'KMS.2603': { status: 400, message: 'Key IDs in the imported key and token do not match.' },
  'KMS.2604': { status: 400, message: 'The external key plaintext length must be 32 bits.' },
  'KMS.2605': { status: 400, message: 'Token verification failed.' },
  'KMS.2606': { status: 400, message: 'You are importing a deleted key again. The imported plaintext must be the same as the deleted key plaintext.' },
  'KMS.2608': { status: 400, message: 'The imported asymmetric private key can not be null.' },
  'KMS.2609': { status: 400, message: 'The imported asymmetric private is invalid.' },
  'KMS.2610': { status: 400, message: 'The temporary key length must be 16 or 32.' },
  'KMS.2701': { status: 400, message: 'Key material is not in Enabled or Disabled state and cannot be deleted.' },
  'KMS.2702': { status: 400, message: 'The imported private key material can not be deleted.' },
  'KMS.2801': { status: 400, message: 'End_time must bigger than start_time.' },
  'KMS.2901': { status: 400, message: 'Key rotation is not disabled.' },
  'KMS.3001': { status: 400, message: 'Invalid rotation_interval.' },
  'KMS.3103': { status: 400, message: 'Invalid id of tenant.' },
  'KMS.3201': { status: 400, message: 'Generate order id failed.' },
  'KMS.3202': { status: 400, message: 'KMS error.' },
  'KMS.3702': { status: 400, message: 'Invalid kms status parameter.' },
  'KMS.3801': { status: 400, message: 'KMS key sync enable and configuration failed.' },
  'KMS.3802': { status: 400, message: 'Failed to sync operation convert to born region.' },
  'KMS.3803': { status: 400, message: 'The key of born region is turned off sync, so no operation can be performed.' },
  'KMS.3804': { status: 400, message: 'AttestationDocument parsing failed.' },
  'KMS.3805': { status: 500, message: 'Failed to build digital envelope.' },
  'KMS.3806': { status: 500, message: 'Unable to obtain enclave root certificate, please contact technical support.' },
  'KMS.3901': { status: 404, message: 'The requested jobId cannot be found.' },
  'KMS.3902': { status: 400, message: 'Invalid Service-Transaction-Id in request header.' },
  'KMS.3903': { status: 400, message: 'Service-Transaction-Id is missing in request header.' },
  'KMS.4001': { status: 400, message: 'Service name to notify is illegal.' },
  'KMS.4002': { status: 400, message: 'Service url to notify is illegal.' },
  'KMS.5012': { status: 500, message: 'Request PDP service failed.' },
  'KMS.5021': { status: 500, message: 'Check pdp5 auth failed.' },
  'KMS.5022': { status: 400, message: 'Tags are not compliant.' },
  'KMS.5023': { status: 400, message: 'Pdp5 Header is invalid.' },
} as const satisfies Record<string, CatalogueEntry>;

export type KmsCode = keyof typeof KMS_ERRORS;

/**
 * Refusals at the HTTP layer, before a request reaches the API, for which HTTP prescribes a status
 * of its own: the body carries the catalogue's code, the status line HTTP's. These are the only
 * statuses besides the catalogue's.
 */
export const HTTP_REFUSALS = {
  /** RFC 6585 §5: the request's header section is larger than the server reads. */
  headersTooLarge: { code: 'KMS.0203', status: 431 },
  /** RFC 9110 §15.5.14: a chunk's extensions are larger than the server reads. */
  chunkExtensionsTooLarge: { code: 'KMS.0203', status: 413 },
  /** RFC 9110 §15.5.9: the request did not arrive in time. */
  requestTimeout: { code: 'KMS.0214', status: 408 },
  /** RFC 9110 §15.5.18: an Expect the server cannot meet (anything but 100-continue). */
  expectationFailed: { code: 'KMS.0214', status: 417 },
} as const satisfies Record<string, { readonly code: KmsCode; readonly status: number }>;

export type HttpRefusal = keyof typeof HTTP_REFUSALS;

export function isKmsCode(code: string): code is KmsCode {
  return Object.prototype.hasOwnProperty.call(KMS_ERRORS, code);
}

/**
 * A failure with a KMS code. `detail` is safe to show the client (it never holds key material, PINs or
 * request values); `cause` is for the log only.
 */
export class KmsError extends Error {
  readonly code: KmsCode;
  readonly detail: string | undefined;

  constructor(code: KmsCode, options: { detail?: string; cause?: unknown } = {}) {
    super(options.detail ? `${code}: ${options.detail}` : code, { cause: options.cause });
    this.name = 'KmsError';
    this.code = code;
    this.detail = options.detail;
  }

  get status(): number {
    return KMS_ERRORS[this.code].status;
  }

  /** The client-facing message: the catalogue's text, plus the safe detail when there is one. */
  get publicMessage(): string {
    const base = KMS_ERRORS[this.code].message;
    return this.detail ? `${base} ${this.detail}` : base;
  }
}

/** A {@link KmsError} whose status HTTP prescribes ({@link HTTP_REFUSALS}). */
export class HttpRefusalError extends KmsError {
  constructor(
    readonly refusal: HttpRefusal,
    options: { detail?: string; cause?: unknown } = {},
  ) {
    super(HTTP_REFUSALS[refusal].code, options);
    this.name = 'HttpRefusalError';
  }

  override get status(): number {
    return HTTP_REFUSALS[this.refusal].status;
  }
}
