import { expect } from 'chai';
import { anchorsToDelete, type AnchorEntry } from '../../server/credential/token-anchors.js';

const now = new Date('2026-01-01T12:00:00Z');
const entry = (anchor: string, overrides: Partial<AnchorEntry> = {}): AnchorEntry => ({
  serviceAccount: 'default/sa', targetCluster: 'default/c', clusterID: 'id-1', anchor, rotation: '', expiresAt: '2026-01-01T13:00:00Z', ...overrides,
});

describe('anchorsToDelete (revocation)', function () {
  it('revokes nothing before the Secret is observed holding the new token (no current anchor)', function () {
    expect(anchorsToDelete([entry('old', { rotation: '1' }), entry('new', { rotation: '2' })], 'new', undefined, now)).to.deep.equal([]);
  });

  it('revokes every token issued before a rotation once the new one is observed', function () {
    const current = entry('new', { rotation: '2' });
    const toDelete = anchorsToDelete([entry('old', { rotation: '1' }), entry('older', { rotation: '' }), current], 'new', current, now);
    expect(toDelete.map(({ entry: e, action }) => [e.anchor, action])).to.deep.equal([['old', 'revoke'], ['older', 'revoke']]);
  });

  it('revokes the tokens of another ServiceAccount or another API server', function () {
    const current = entry('new');
    const toDelete = anchorsToDelete([entry('other-sa', { serviceAccount: 'default/sa-2' }), entry('other-cluster', { clusterID: 'id-2' }), current], 'new', current, now);
    expect(toDelete.map(({ action }) => action)).to.deep.equal(['revoke', 'revoke']);
  });

  it('leaves a renewed token\'s predecessor to run out, and deletes its anchor once expired', function () {
    const current = entry('new');
    expect(anchorsToDelete([entry('previous'), current], 'new', current, now)).to.deep.equal([]);
    const expired = entry('previous', { expiresAt: '2026-01-01T11:59:59Z' });
    expect(anchorsToDelete([expired, current], 'new', current, now)).to.deep.equal([{ entry: expired, action: 'expired' }]);
    expect(anchorsToDelete([expired, current], 'new', undefined, now)).to.deep.equal([{ entry: expired, action: 'expired' }]);
  });

  it('never deletes the anchor of the token being handed out, even when its clock says it expired', function () {
    const late = new Date('2026-01-01T14:00:00Z');
    expect(anchorsToDelete([entry('old'), entry('new')], 'new', undefined, late).map(({ entry: e }) => e.anchor)).to.deep.equal(['old']);
  });
});
