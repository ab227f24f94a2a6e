import { expect } from 'chai';
import { anchorEntryOf, anchorNameFor, anchorsOf, anchorsToDelete, markSuperseded, maxRecordedAnchors, nextGraceEnd, roomForAnchor, type AnchorEntry } from '../../server/credential/token-anchors.js';

const now = new Date('2026-01-01T12:00:00Z');
const graceMs = 10 * 60_000;
const limits = { renewalGraceMs: graceMs, maxLifetimeMs: 24 * 3_600_000 };
const entry = (anchor: string, overrides: Partial<AnchorEntry> = {}): AnchorEntry => ({
  serviceAccount: 'default/sa', targetCluster: 'default/c', clusterID: 'id-1', anchor, rotation: '', expiresAt: '2026-01-01T13:00:00Z', ...overrides,
});

describe('anchorsToDelete (revocation)', function () {
  it('revokes nothing before the Secret is observed holding the new token (no current anchor)', function () {
    expect(anchorsToDelete([entry('old', { rotation: '1' }), entry('new', { rotation: '2' })], 'new', undefined, limits, now)).to.deep.equal([]);
  });

  it('revokes every token issued before a rotation once the new one is observed', function () {
    const current = entry('new', { rotation: '2' });
    const toDelete = anchorsToDelete([entry('old', { rotation: '1' }), entry('older', { rotation: '' }), current], 'new', current, limits, now);
    expect(toDelete.map(({ entry: e, action }) => [e.anchor, action])).to.deep.equal([['old', 'revoke'], ['older', 'revoke']]);
  });

  it('revokes the tokens of another ServiceAccount or another API server', function () {
    const current = entry('new');
    const toDelete = anchorsToDelete([entry('other-sa', { serviceAccount: 'default/sa-2' }), entry('other-cluster', { clusterID: 'id-2' }), current], 'new', current, limits, now);
    expect(toDelete.map(({ action }) => action)).to.deep.equal(['revoke', 'revoke']);
  });

  it('deletes a renewed token\'s predecessor only once its grace has passed, and an expired one at once', function () {
    const current = entry('new');
    expect(anchorsToDelete([entry('previous'), current], 'new', current, limits, now)).to.deep.equal([]);
    const superseded = entry('previous', { supersededAt: '2026-01-01T11:50:01Z' });
    expect(anchorsToDelete([superseded, current], 'new', current, limits, now)).to.deep.equal([]);
    const graceOver = entry('previous', { supersededAt: '2026-01-01T11:50:00Z' });
    expect(anchorsToDelete([graceOver, current], 'new', current, limits, now)).to.deep.equal([{ entry: graceOver, action: 'renewed' }]);
    const expired = entry('previous', { expiresAt: '2026-01-01T11:59:59Z' });
    expect(anchorsToDelete([expired, current], 'new', current, limits, now)).to.deep.equal([{ entry: expired, action: 'expired' }]);
    expect(anchorsToDelete([expired, current], 'new', undefined, limits, now)).to.deep.equal([{ entry: expired, action: 'expired' }]);
  });

  it('never deletes the anchor of the token being handed out, even when its clock says it expired', function () {
    const late = new Date('2026-01-01T14:00:00Z');
    expect(anchorsToDelete([entry('old'), entry('new')], 'new', undefined, limits, late).map(({ entry: e }) => e.anchor)).to.deep.equal(['old']);
  });

  it('marks a renewed token\'s predecessor superseded once, from the first sync that sees the Secret holding its successor', function () {
    const current = entry('new');
    const previous = entry('previous');
    expect(markSuperseded([previous, current], 'new', undefined, now)).to.deep.equal([previous, current]);
    const marked = markSuperseded([previous, current], 'new', current, now);
    expect(marked).to.deep.equal([{ ...previous, supersededAt: '2026-01-01T12:00:00Z' }, current]);
    const later = new Date('2026-01-01T12:05:00Z');
    expect(markSuperseded(marked, 'new', current, later)).to.deep.equal(marked);
    expect(nextGraceEnd(marked, graceMs, later)?.toISOString()).to.equal('2026-01-01T12:10:00.000Z');
    expect(nextGraceEnd(marked, graceMs, new Date('2026-01-01T12:10:00Z'))).to.equal(undefined);
    expect(nextGraceEnd([current], graceMs, now)).to.equal(undefined);
  });

  it('does not mark the tokens a rotation replaced (they are revoked, not given grace)', function () {
    const current = entry('new', { rotation: '2' });
    const rotatedAway = entry('old', { rotation: '1' });
    expect(markSuperseded([rotatedAway, current], 'new', current, now)).to.deep.equal([rotatedAway, current]);
  });

  it('revokes a token that outlives the lifetime ceiling (minted before it), also when the answer keeps the Secret as it is', function () {
    const tenYears = entry('old', { expiresAt: '2036-01-01T12:00:00Z' });
    const current = entry('new');
    expect(anchorsToDelete([tenYears, current], 'new', current, limits, now)).to.deep.equal([{ entry: tenYears, action: 'overlong' }]);
    expect(anchorsToDelete([tenYears, current], undefined, undefined, limits, now)).to.deep.equal([{ entry: tenYears, action: 'overlong' }]);
    expect(anchorsToDelete([current], undefined, undefined, limits, now)).to.deep.equal([]);
  });
});

describe('anchorEntryOf', function () {
  it('records where the token lives and its anchor\'s UID, not the ServiceAccount\'s UID (the ledger keeps that)', function () {
    const account = { serviceAccount: 'default/sa', targetCluster: 'default/c', targetClusterUID: 'c-uid', clusterID: 'id-1', serviceAccountUID: 'sa-uid' };
    expect(anchorEntryOf(account, { name: 'sa-token-x', uid: 'anchor-uid' }, 'r', '2026-01-01T13:00:00Z')).to.deep.equal({
      serviceAccount: 'default/sa', targetCluster: 'default/c', targetClusterUID: 'c-uid', clusterID: 'id-1',
      anchor: 'sa-token-x', anchorUID: 'anchor-uid', rotation: 'r', expiresAt: '2026-01-01T13:00:00Z',
    });
    expect(anchorEntryOf(account, { name: 'sa-token-x' }, '', '2026-01-01T13:00:00Z')).to.not.have.property('anchorUID');
  });

  it('reads anchorUID back from the status, and drops an entry whose anchorUID is not a string', function () {
    const kept = entry('a', { anchorUID: 'u' });
    expect(anchorsOf({ tokenAnchors: [kept, { ...entry('b'), anchorUID: 7 } as unknown as AnchorEntry] })).to.deep.equal([kept]);
  });
});

describe('anchorNameFor (one anchor name per request and token the Secret holds)', function () {
  it('is the same for every mint while the Secret holds the same token, and another once it holds a newer one', function () {
    expect(anchorNameFor('sa', 'uid-1', undefined)).to.equal(anchorNameFor('sa', 'uid-1', undefined));
    expect(anchorNameFor('sa', 'uid-1', 'sa-token-abc')).to.equal(anchorNameFor('sa', 'uid-1', 'sa-token-abc'));
    expect(anchorNameFor('sa', 'uid-1', 'sa-token-abc')).to.not.equal(anchorNameFor('sa', 'uid-1', undefined));
    expect(anchorNameFor('sa', 'uid-1', 'sa-token-abc')).to.not.equal(anchorNameFor('sa', 'uid-1', 'sa-token-abd'));
  });

  it('differs between requests (a recreated request has another UID), and is a valid Secret name', function () {
    expect(anchorNameFor('sa', 'uid-1', undefined)).to.not.equal(anchorNameFor('sa', 'uid-2', undefined));
    expect(anchorNameFor('sa', 'uid-1', undefined)).to.match(/^sa-token-[0-9a-f]{10}$/);
    expect(anchorNameFor('s'.repeat(253), 'uid-1', undefined)).to.have.length(57);
  });
});

describe('roomForAnchor (status.tokenAnchors holds at most maxRecordedAnchors)', function () {
  const many = (count: number, expiresAt: (i: number) => string) => Array.from({ length: count }, (_, i) => entry(`a-${i}`, { expiresAt: expiresAt(i) }));

  it('leaves a record with room as it is', function () {
    const anchors = many(maxRecordedAnchors - 1, () => '2026-01-01T13:00:00Z');
    expect(roomForAnchor(anchors, now)).to.equal(anchors);
  });

  it('drops the oldest expired entries first to make room', function () {
    const anchors = many(maxRecordedAnchors, (i) => (i === 5 ? '2026-01-01T11:00:00Z' : i === 9 ? '2026-01-01T10:00:00Z' : '2026-01-01T13:00:00Z'));
    const room = roomForAnchor(anchors, now)!;
    expect(room).to.have.length(maxRecordedAnchors - 1);
    expect(room.map((e) => e.anchor)).to.not.include('a-9');
    expect(room.map((e) => e.anchor)).to.include('a-5');
  });

  it('has no room when every entry is a live token: none is forgotten', function () {
    expect(roomForAnchor(many(maxRecordedAnchors, () => '2026-01-01T13:00:00Z'), now)).to.equal(undefined);
  });
});
