/**
 * The operations the seam runs on a pooled session, as the session runner names them in its log
 * lines and reports them to an {@link HsmObserver}: a closed list, so that what is counted per
 * operation stays bounded.
 */
export const HSM_CALLS = [
  'generate random',
  'ping',
  'generate key',
  'destroy key',
  'find key',
  'encrypt',
  'decrypt',
  'sign',
  'verify',
  'rsa decrypt',
  'derive',
  'generate mac',
  'verify mac',
  'read public key',
  'create wrapping key',
  'unwrap key',
] as const;

export type HsmCallName = (typeof HSM_CALLS)[number];

/**
 * What the session runner reports of each attempt of an operation on a session (its PKCS#11
 * calls), for the metrics (src/metrics implements it; the seam knows no metrics library). Called
 * synchronously on the request's path: it must be cheap and must not throw.
 */
export interface HsmObserver {
  /**
   * One attempt ended: how long its calls took, in seconds, and the CKR name (e.g.
   * "CKR_DEVICE_ERROR") when the module refused one of them; undefined when it answered (an error
   * of our own, such as a GCM tag that does not verify, is the caller's, not the HSM's).
   */
  callEnded(call: HsmCallName, seconds: number, ckr: string | undefined): void;
  /** One attempt got no answer within its deadline: its session was abandoned, its call goes on. */
  callTimedOut(call: HsmCallName): void;
}
