import type { AuthFailureRecord } from '../../src/audit/audit-records';
import { AuthFailureAudit, type AuthFailure } from '../../src/audit/auth-failure-audit';

/** The chain, as the aggregator sees it: records appended, and whether it can be written. */
class Chain {
  readonly records: AuthFailureRecord[] = [];
  writable = true;
  append(record: AuthFailureRecord): void {
    this.records.push(record);
  }
}

let sequence = 0;
function failure(overrides: Partial<AuthFailure> = {}): AuthFailure {
  sequence++;
  return {
    time: new Date(1_700_000_000_000 + sequence).toISOString(),
    requestId: `request-${sequence}`,
    client: '192.0.2.1',
    claimed: { kind: 'access-key', id: 'AKSTUFFED00000000000' },
    reason: 'signature-mismatch',
    ...overrides,
  };
}

// A window longer than any test: windows end when a test calls flush().
const options = { windowMs: 3_600_000, maxTracked: 100 };

describe('failed authentications under a flood', () => {
  let audit: AuthFailureAudit;
  afterEach(() => audit.close());

  it('records the first of a kind at once, and the rest of the window as one count', () => {
    const chain = new Chain();
    audit = new AuthFailureAudit(chain, options);
    const first = failure();
    audit.record(first);
    for (let i = 0; i < 9_999; i++) audit.record(failure());
    expect(chain.records).toEqual([
      { time: first.time, event: 'authentication-failed', request_id: first.requestId, claimed: first.claimed, client: '192.0.2.1', reason: 'signature-mismatch', count: 1 },
    ]);
    audit.flush();
    expect(chain.records).toHaveLength(2);
    expect(chain.records[1]).toMatchObject({ request_id: null, client: '192.0.2.1', claimed: first.claimed, count: 9_999, until: expect.any(String) });
    // A new window starts afresh.
    audit.record(failure());
    expect(chain.records).toHaveLength(3);
    expect(chain.records[2]).toMatchObject({ count: 1, request_id: expect.any(String) });
  });

  it('keeps apart failures of another client, credential or reason', () => {
    const chain = new Chain();
    audit = new AuthFailureAudit(chain, options);
    audit.record(failure());
    audit.record(failure({ client: '198.51.100.7' }));
    audit.record(failure({ claimed: { kind: 'access-key', id: 'AKOTHER' } }));
    audit.record(failure({ reason: 'unusable-access-key' }));
    expect(chain.records).toHaveLength(4);
    expect(chain.records.every((record) => record.count === 1)).toBe(true);
  });

  it('tracks at most maxTracked kinds: failures of more are counted by reason, so memory stays bounded', () => {
    const chain = new Chain();
    audit = new AuthFailureAudit(chain, options);
    for (let i = 0; i < 50_000; i++) audit.record(failure({ claimed: { kind: 'access-key', id: `AK${i}` }, client: `10.0.${i % 256}.${i % 7}` }));
    expect(audit.tracked).toBe(options.maxTracked + 1);
    expect(chain.records).toHaveLength(options.maxTracked);
    audit.flush();
    expect(chain.records).toHaveLength(options.maxTracked + 1);
    expect(chain.records[options.maxTracked]).toMatchObject({ untracked: true, client: null, claimed: { kind: 'none', id: null }, reason: 'signature-mismatch', count: 50_000 - options.maxTracked });
    expect(audit.tracked).toBe(0);
  });

  it('while the chain cannot be written, counts within the same bounds and records them once it can', () => {
    const chain = new Chain();
    audit = new AuthFailureAudit(chain, options);
    chain.writable = false;
    for (let i = 0; i < 1_000; i++) audit.record(failure());
    audit.flush();
    expect(chain.records).toHaveLength(0);
    expect(audit.tracked).toBe(1);
    chain.writable = true;
    audit.flush();
    expect(chain.records).toEqual([expect.objectContaining({ count: 1_000, request_id: null })]);
  });
});
