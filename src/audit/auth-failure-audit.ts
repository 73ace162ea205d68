import type { AuthFailureReason, ClaimedCredential } from '../identity/authenticator';
import type { AuthFailureRecord } from './audit-records';

/** One failed authentication, as the HTTP layer saw it. */
export interface AuthFailure {
  readonly time: string;
  readonly requestId: string;
  /** The peer's address (the socket's, not a header a client could set). */
  readonly client: string | null;
  readonly claimed: ClaimedCredential;
  readonly reason: AuthFailureReason;
}

export interface AuthFailureAuditOptions {
  /** How long identical failures are counted before their count is recorded. */
  readonly windowMs: number;
  /** Distinct (client, claimed credential, reason) counted at once; failures beyond are counted by reason only. */
  readonly maxTracked: number;
}

export const DEFAULT_AUTH_FAILURE_AUDIT: AuthFailureAuditOptions = { windowMs: 10_000, maxTracked: 1_000 };

interface Tally {
  readonly failure: AuthFailure;
  /** Failures counted since the last record of this kind, and the first and last of them. */
  count: number;
  since: string;
  until: string;
}

/**
 * Records failed authentications in the audit chain at a bounded cost under a flood (credential
 * stuffing must be visible, and must not fill the disk or the memory): the first failure of each
 * (client address, claimed credential, reason) in a window is recorded at once, the others of the
 * window are counted and recorded as one line with their count when the window ends. At most
 * `maxTracked` kinds are tracked per window; failures of further kinds are counted per reason only.
 * While the chain cannot be written nothing is recorded and the counts wait, within the same bounds.
 */
export class AuthFailureAudit {
  private readonly tallies = new Map<string, Tally>();
  private readonly untracked = new Map<AuthFailureReason, Tally>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly sink: { append(record: AuthFailureRecord): void; readonly writable: boolean },
    private readonly options: AuthFailureAuditOptions = DEFAULT_AUTH_FAILURE_AUDIT,
  ) {
    this.timer = setInterval(() => this.flush(), options.windowMs);
    this.timer.unref();
  }

  /** Kinds of failure counted now (at most maxTracked, plus one per reason). */
  get tracked(): number {
    return this.tallies.size + this.untracked.size;
  }

  record(failure: AuthFailure): void {
    const key = `${failure.client}\u0000${failure.claimed.kind}\u0000${failure.claimed.id}\u0000${failure.reason}`;
    const tally = this.tallies.get(key);
    if (tally) return count(tally, failure);
    if (this.tallies.size >= this.options.maxTracked) {
      const other = this.untracked.get(failure.reason);
      if (other) return count(other, failure);
      this.untracked.set(failure.reason, { failure, count: 1, since: failure.time, until: failure.time });
      return;
    }
    if (!this.sink.writable) {
      this.tallies.set(key, { failure, count: 1, since: failure.time, until: failure.time });
      return;
    }
    this.tallies.set(key, { failure, count: 0, since: failure.time, until: failure.time });
    this.sink.append({
      time: failure.time,
      event: 'authentication-failed',
      request_id: failure.requestId,
      claimed: failure.claimed,
      client: failure.client,
      reason: failure.reason,
      count: 1,
    });
  }

  /** Ends the window: records every count, then starts counting afresh. */
  flush(): void {
    if (!this.sink.writable) return;
    for (const tally of this.tallies.values()) {
      if (tally.count > 0) this.sink.append(windowRecord(tally, false));
    }
    for (const tally of this.untracked.values()) this.sink.append(windowRecord(tally, true));
    this.tallies.clear();
    this.untracked.clear();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }
}

function count(tally: Tally, failure: AuthFailure): void {
  if (tally.count === 0) tally.since = failure.time;
  tally.count++;
  tally.until = failure.time;
}

function windowRecord(tally: Tally, untracked: boolean): AuthFailureRecord {
  return {
    time: tally.since,
    event: 'authentication-failed',
    request_id: null,
    claimed: untracked ? { kind: 'none', id: null } : tally.failure.claimed,
    client: untracked ? null : tally.failure.client,
    reason: tally.failure.reason,
    count: tally.count,
    ...(tally.count > 1 ? { until: tally.until } : {}),
    ...(untracked ? { untracked: true as const } : {}),
  };
}
