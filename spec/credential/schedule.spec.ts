import { expect } from 'chai';
import { retryAfterSeconds, secondsUntil, unobservedMintRetryAt } from '../../server/credential/schedule.js';

const issuedAt = new Date('2026-01-01T00:00:00Z');

describe('resync schedule', function () {
  it('rounds the seconds until the refresh up, and never below 1', function () {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(secondsUntil(new Date(now.getTime() + 2_880_001), now)).to.equal(2_881);
    expect(secondsUntil(new Date(now.getTime() - 60_000), now)).to.equal(1);
  });

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
  const at = (seconds: number) => new Date(issuedAt.getTime() + seconds * 1_000);
  const retry = (mintedAt: number, failingSince: number) => unobservedMintRetryAt(at(mintedAt), at(failingSince));

  it('waits 5 s after a mint made when the failure began', function () {
    expect(retry(0, 0)).to.deep.equal(at(5));
    // A failingSince after the mint (a reason that changed since) counts from the mint.
    expect(retry(100, 130)).to.deep.equal(at(105));
  });

  it('doubles the time since the failure began at each mint: 5, 10, 20, 40 s...', function () {
    let mintedAt = 0;
    const gaps: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      const next = (retry(mintedAt, 0).getTime() - issuedAt.getTime()) / 1_000;
      gaps.push(next - mintedAt);
      mintedAt = next;
    }
    expect(gaps).to.deep.equal([5, 5, 10, 20, 40, 80]);
  });

  it('waits at most 5 minutes after a mint, however long the failure', function () {
    expect(retry(86_400, 0)).to.deep.equal(at(86_400 + 300));
  });
});
