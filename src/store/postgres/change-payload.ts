/**
 * The change feed's NOTIFY payload: the key that changed ('' for "anything") and when its sender
 * announced it, just before its COMMIT (milliseconds since the epoch on the sender's clock), so
 * that each listener can tell how long the change took to reach it (the metrics' change feed lag).
 * `<key id>@<ms>`: a key id never holds '@'. A payload without the time (a key id alone) is read as
 * a change of that key whose time is unknown.
 */

export interface ChangeNotice {
  /** undefined: anything may have changed. */
  readonly keyId: string | undefined;
  readonly sentAtMs: number | undefined;
}

export function changePayload(keyId: string, sentAtMs: number): string {
  return `${keyId}@${sentAtMs}`;
}

const TIMED = /^(.*)@(\d{1,15})$/s;

export function readChangePayload(payload: string | undefined): ChangeNotice {
  const timed = TIMED.exec(payload ?? '');
  const keyId = timed ? timed[1]! : (payload ?? '');
  return { keyId: keyId === '' ? undefined : keyId, sentAtMs: timed ? Number(timed[2]) : undefined };
}
