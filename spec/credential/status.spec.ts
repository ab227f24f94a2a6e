import { expect } from 'chai';
import {
  buildStatus, failed, failingSince, reasons, retryAfterSeconds, succeeded, unobservedMintRetryAt, type StatusInput,
} from '../../server/credential/status.js';

const now = new Date('2026-01-01T00:10:00.123Z');
const later = new Date('2026-01-01T00:20:00Z');

function input(overrides: Partial<StatusInput> = {}): StatusInput {
  return {
    previous: undefined,
    generation: 2,
    serviceAccount: succeeded('service account default/sa exists'),
    secret: succeeded('secret default/s holds a token'),
    identity: { serviceAccount: 'default/sa', targetCluster: 'default/c', targetClusterUID: 'cuid' },
    secretName: 'default/s',
    token: { issuedAt: new Date('2026-01-01T00:00:00Z'), expiresAt: new Date('2026-01-01T01:00:00Z') },
    now,
    ...overrides,
  };
}

describe('buildStatus', function () {
  it('reports a ready request with its identity, times and three conditions', function () {
    const status = buildStatus(input());
    expect(status).to.deep.include({
      serviceAccount: 'default/sa', targetCluster: 'default/c', targetClusterUID: 'cuid', secret: 'default/s',
      issuedAt: '2026-01-01T00:00:00Z', expirationTimestamp: '2026-01-01T01:00:00Z',
    });
    expect(status.conditions?.map((c) => [c.type, c.status, c.reason])).to.deep.equal([
      ['ServiceAccountReconciled', 'True', 'Success'], ['SecretReconciled', 'True', 'Success'], ['Ready', 'True', 'Success'],
    ]);
    expect(status.conditions?.[0]).to.include({ lastTransitionTime: '2026-01-01T00:10:00Z', observedGeneration: 2 });
  });

  it('gives the same status for the same inputs at a later time', function () {
    const first = buildStatus(input());
    expect(JSON.stringify(buildStatus(input({ previous: first, now: later })))).to.equal(JSON.stringify(first));
  });

  it('moves lastTransitionTime only for conditions whose status changed', function () {
    const first = buildStatus(input());
    const second = buildStatus(input({
      previous: first, now: later, secret: failed(reasons.tokenRequestFailed, 'boom'),
    }));
    expect(second.conditions?.map((c) => c.lastTransitionTime)).to.deep.equal(['2026-01-01T00:10:00Z', '2026-01-01T00:20:00Z', '2026-01-01T00:20:00Z']);
  });

  it("gives Ready the reason of the first failing condition", function () {
    const status = buildStatus(input({
      serviceAccount: failed(reasons.serviceAccountConflict, 'in use'), secret: failed(reasons.pending, 'waiting'),
    }));
    expect(status.conditions?.[2]).to.include({ status: 'False', reason: 'ServiceAccountConflict', message: 'in use' });
  });

  it('carries the identity over from the previous status when none is given', function () {
    const first = buildStatus(input());
    const status = buildStatus(input({ previous: first, identity: undefined, secretName: undefined, token: undefined }));
    expect(status).to.include({ serviceAccount: 'default/sa', targetCluster: 'default/c', targetClusterUID: 'cuid' });
    expect(status).to.not.have.property('secret');
    expect(status).to.not.have.property('expirationTimestamp');
  });

  it('dates a failure from Ready turning False, and starts afresh when the reason changes', function () {
    const failing = buildStatus(input({ secret: failed(reasons.targetClusterUnreachable, 'down') }));
    expect(failingSince(failing, reasons.targetClusterUnreachable)?.toISOString()).to.equal('2026-01-01T00:10:00.000Z');
    expect(failingSince(failing, reasons.tokenRequestFailed)).to.equal(undefined);
    expect(failingSince(buildStatus(input()), reasons.targetClusterUnreachable)).to.equal(undefined);
  });

  it('backs off from when the current reason began, not from when Ready turned False (the delay grows, then starts afresh)', function () {
    // A request failing for 10 minutes with one reason, whose reason then changes: Ready's
    // lastTransitionTime stays at the first failure, but the delay must start again at 5 s.
    const start = new Date('2026-01-01T00:00:00Z');
    const minutes = (m: number) => new Date(start.getTime() + m * 60_000);
    let status = buildStatus(input({ now: start, secret: failed(reasons.targetClusterUnreachable, 'down') }));
    const delays: number[] = [];
    const step = (now: Date, reason: typeof reasons[keyof typeof reasons]) => {
      status = buildStatus(input({ previous: status, now, secret: failed(reason, 'failing') }));
      delays.push(retryAfterSeconds(failingSince(status, reason), now));
    };
    step(minutes(1), reasons.targetClusterUnreachable);
    step(minutes(10), reasons.targetClusterUnreachable);
    step(minutes(11), reasons.tokenRequestFailed);
    step(minutes(11.5), reasons.tokenRequestFailed);
    step(minutes(15), reasons.tokenRequestFailed);
    expect(delays).to.deep.equal([30, 300, 5, 15, 120]);
    expect(status.conditions?.[2]?.lastTransitionTime).to.equal('2026-01-01T00:00:00Z');
    expect(status.failingSince).to.equal('2026-01-01T00:11:00Z');
  });

  it('drops failingSince once Ready is True', function () {
    const failing = buildStatus(input({ secret: failed(reasons.targetClusterUnreachable, 'down') }));
    expect(buildStatus(input({ previous: failing, now: later }))).to.not.have.property('failingSince');
  });
});

describe('failure backoff', function () {
  it('backs off failing requests from 5 s growing to 5 min', function () {
    const now = new Date('2026-01-01T01:00:00Z');
    const failingFor = (seconds: number) => new Date(now.getTime() - seconds * 1_000);
    expect(retryAfterSeconds(undefined, now)).to.equal(5);
    expect(retryAfterSeconds(failingFor(4), now)).to.equal(5);
    expect(retryAfterSeconds(failingFor(60), now)).to.equal(30);
    expect(retryAfterSeconds(failingFor(3_000), now)).to.equal(300);
  });
});

describe('unobservedMintRetryAt (the backoff of a mint whose previous token no Secret showed)', function () {
  const origin = new Date('2026-01-01T00:00:00Z');
  const at = (seconds: number) => new Date(origin.getTime() + seconds * 1_000);
  const retry = (mintedAt: number, since: number) => unobservedMintRetryAt(at(mintedAt), at(since));

  it('waits 5 s after a mint made when the failure began', function () {
    expect(retry(0, 0)).to.deep.equal(at(5));
    // A failingSince after the mint (a reason that changed since) counts from the mint.
    expect(retry(100, 130)).to.deep.equal(at(105));
  });

  it('doubles the time since the failure began at each mint: 5, 10, 20, 40 s...', function () {
    let mintedAt = 0;
    const gaps: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      const next = (retry(mintedAt, 0).getTime() - origin.getTime()) / 1_000;
      gaps.push(next - mintedAt);
      mintedAt = next;
    }
    expect(gaps).to.deep.equal([5, 5, 10, 20, 40, 80]);
  });

  it('waits at most 5 minutes after a mint, however long the failure', function () {
    expect(retry(86_400, 0)).to.deep.equal(at(86_400 + 300));
  });
});
