import * as pkcs11 from 'pkcs11js';

/**
 * What a PKCS#11 return value means for the caller: the one table that turns CKR codes into
 * recovery actions and KMS codes.
 */
export type CkrClass =
  /** The session is unusable: drop it, open a new one, retry once. */
  | 'session'
  /** The module or device is in trouble: re-initialise the module, flush the handle cache, retry once. */
  | 'module'
  /** A cached object handle is stale (another process destroyed or re-created the object): look it up again. */
  | 'handle'
  /** The HSM is out of sessions or memory: a retryable 503. */
  | 'busy'
  /** The PIN is wrong or locked: a configuration error at start-up. */
  | 'pin'
  /** Anything else: a 500 with the cause in the log. */
  | 'internal';

const TABLE: ReadonlyMap<number, CkrClass> = new Map<number, CkrClass>([
  [pkcs11.CKR_SESSION_HANDLE_INVALID, 'session'],
  [pkcs11.CKR_SESSION_CLOSED, 'session'],
  [pkcs11.CKR_USER_NOT_LOGGED_IN, 'session'],
  // A session left with an operation active (an interrupted call) cannot start another one.
  [pkcs11.CKR_OPERATION_ACTIVE, 'session'],

  [pkcs11.CKR_DEVICE_ERROR, 'module'],
  [pkcs11.CKR_DEVICE_REMOVED, 'module'],
  [pkcs11.CKR_TOKEN_NOT_PRESENT, 'module'],
  [pkcs11.CKR_TOKEN_NOT_RECOGNIZED, 'module'],
  [pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, 'module'],
  // The slot is gone: the module lost its state (NSS's softoken answers this once finalised) or the device.
  [pkcs11.CKR_SLOT_ID_INVALID, 'module'],

  [pkcs11.CKR_OBJECT_HANDLE_INVALID, 'handle'],
  [pkcs11.CKR_KEY_HANDLE_INVALID, 'handle'],

  [pkcs11.CKR_SESSION_COUNT, 'busy'],
  [pkcs11.CKR_DEVICE_MEMORY, 'busy'],
  [pkcs11.CKR_HOST_MEMORY, 'busy'],

  [pkcs11.CKR_PIN_INCORRECT, 'pin'],
  [pkcs11.CKR_PIN_LOCKED, 'pin'],
]);

/** The CKR code of a pkcs11js error, or undefined for errors that did not come from the module. */
export function ckrOf(error: unknown): number | undefined {
  // By shape, not instanceof, so that errors from another copy of the module's classes still count.
  if (typeof error !== 'object' || error === null) return undefined;
  const { name, code } = error as { name?: unknown; code?: unknown };
  return name === 'Pkcs11Error' && typeof code === 'number' ? code : undefined;
}

/**
 * Classifies a failure of a PKCS#11 call. A GCM tag that does not verify is not classified here:
 * what C_Decrypt answers for it differs between modules, and only C_Decrypt's answer counts (see
 * Pkcs11Profile.badTagCodes).
 */
export function classifyCkr(error: unknown): CkrClass {
  const code = ckrOf(error);
  if (code === undefined) return 'internal';
  return TABLE.get(code) ?? 'internal';
}

/** pkcs11js's CKR_* constants by value (built on first use). */
let ckrConstants: ReadonlyMap<number, string> | undefined;

/**
 * The constant's name of a CKR code, e.g. "CKR_DEVICE_ERROR"; "CKR_UNKNOWN" for a code pkcs11js
 * does not name (a vendor's), so that the names stay a bounded set (metrics label them).
 */
export function ckrConstant(code: number): string {
  ckrConstants ??= new Map(
    Object.entries(pkcs11 as unknown as Record<string, unknown>)
      .filter((entry): entry is [string, number] => entry[0].startsWith('CKR_') && typeof entry[1] === 'number')
      .map(([name, value]) => [value, name] as const)
      .reverse(), // the first name of a value wins, as Object.keys(...).find did
  );
  return ckrConstants.get(code) ?? 'CKR_UNKNOWN';
}

/** A readable name for the log, e.g. "CKR_DEVICE_ERROR (0x30)". */
export function ckrName(error: unknown): string {
  const code = ckrOf(error);
  if (code === undefined) return error instanceof Error ? error.message : String(error);
  return `${ckrConstant(code)} (0x${code.toString(16)})`;
}
