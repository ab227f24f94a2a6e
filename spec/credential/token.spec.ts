import { expect } from 'chai';
import { decideToken, jitterMsFor, maxJitterMs, refreshTime } from '../../server/credential/token.js';
import { tokenRecord } from './fixtures.js';

const { token: _token, issuedAt: _issuedAt, expiresAt: _expiresAt, ...identity } = tokenRecord();
const beforeRefresh = new Date('2026-01-01T00:30:00Z');
const hour = 3_600_000;
const issuedAt = new Date('2026-01-01T00:00:00Z');
const lifetime = (ttlMs: number) => ({ issuedAt, expiresAt: new Date(issuedAt.getTime() + ttlMs) });

describe('decideToken', function () {
  it('keeps a fresh token minted for the same identity', function () {
    expect(decideToken(tokenRecord(), identity, 0, beforeRefresh)).to.deep.equal({ action: 'keep', record: tokenRecord() });
  });

  it('mints when there is no token yet', function () {
    expect(decideToken(undefined, identity, 0, beforeRefresh)).to.deep.equal({ action: 'mint', why: 'no token yet' });
  });

  const changes: [keyof typeof identity, string][] = [
    ['serviceAccount', 'the ServiceAccount changed'],
    ['serviceAccountUid', 'the ServiceAccount was recreated'],
    ['targetCluster', 'the target cluster changed'],
    ['targetClusterUid', 'the DPUCluster was recreated'],
    ['duration', 'the duration changed'],
    ['rotation', 'a rotation was requested'],
  ];
  for (const [field, why] of changes) {
    it(`mints when ${why}`, function () {
      const forced = field === 'duration' || field === 'rotation' ? { forced: true } : {};
      expect(decideToken(tokenRecord(), { ...identity, [field]: 'changed' }, 0, beforeRefresh)).to.deep.equal({ action: 'mint', why, ...forced });
    });
  }

  it('mints at the refresh time, which the jitter brings forward', function () {
    const justBefore = new Date('2026-01-01T00:47:59Z');
    expect(decideToken(tokenRecord(), identity, 0, justBefore).action).to.equal('keep');
    expect(decideToken(tokenRecord(), identity, 2_000, justBefore).action).to.equal('mint');
    expect(decideToken(tokenRecord(), identity, 0, new Date('2026-01-01T00:48:00Z'))).to.deep.equal({ action: 'mint', why: 'the token is due for refresh' });
  });

  it('holds a forced rotation (rotate value, duration) back until the minimum interval since the last one has passed, unless a refresh is due anyway; never a new ServiceAccount', function () {
    const rotated = { ...identity, rotation: '2' };
    const allowedAt = new Date('2026-01-01T00:31:00Z');
    expect(decideToken(tokenRecord(), rotated, 0, beforeRefresh, allowedAt)).to.deep.equal({ action: 'keep', record: tokenRecord(), rotationAllowedAt: allowedAt });
    expect(decideToken(tokenRecord(), rotated, 0, allowedAt, allowedAt)).to.deep.equal({ action: 'mint', why: 'a rotation was requested', forced: true });
    expect(decideToken(tokenRecord(), rotated, 0, new Date('2026-01-01T00:48:00Z'), new Date('2026-01-01T01:00:00Z')).action).to.equal('mint');
    expect(decideToken(tokenRecord(), { ...identity, duration: '2h' }, 0, beforeRefresh, allowedAt)).to.deep.equal({ action: 'keep', record: tokenRecord(), rotationAllowedAt: allowedAt });
    expect(decideToken(tokenRecord(), { ...rotated, serviceAccount: 'default/other' }, 0, beforeRefresh, allowedAt))
      .to.deep.equal({ action: 'mint', why: 'the ServiceAccount changed' });
  });
});

describe('refresh schedule', function () {
  it('renews after 80% of a 1h lifetime, less the jitter', function () {
    expect(refreshTime(lifetime(hour), 0).toISOString()).to.equal('2026-01-01T00:48:00.000Z');
    expect(refreshTime(lifetime(hour), 7_000).toISOString()).to.equal('2026-01-01T00:47:53.000Z');
  });

  it('renews a 48h token after 24h at the latest', function () {
    expect(refreshTime(lifetime(48 * hour), 0).toISOString()).to.equal('2026-01-02T00:00:00.000Z');
  });

  it('keeps the 80% rule when it comes before 24h (a 25h token renews at 20h)', function () {
    expect(refreshTime(lifetime(25 * hour), 0).toISOString()).to.equal('2026-01-01T20:00:00.000Z');
  });

  it('fixes the jitter per request UID, within [0, 10 s)', function () {
    const uids = Array.from({ length: 200 }, (_, i) => `uid-${i}`);
    const jitters = uids.map(jitterMsFor);
    expect(jitters.every((ms) => ms >= 0 && ms < maxJitterMs)).to.equal(true);
    expect(jitterMsFor('uid-1')).to.equal(jitters[1]);
    expect(new Set(jitters).size).to.be.greaterThan(150);
  });
});
