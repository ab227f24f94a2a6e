import { expect } from 'chai';
import { holdingsOf } from '../../server/hooks/run.js';
import { fakeToken } from './fake-clusters.js';

describe('holdingsOf (what a request holds, as recorded and as observed)', function () {
  const record = {
    serviceAccount: 'tenant/sa', serviceAccountUid: 'sa-uid', targetCluster: 'provider/shared', targetClusterUid: 'c-uid',
    duration: '3600s', rotation: '', issuedAt: new Date('2026-03-01T00:00:00Z'), expiresAt: new Date('2026-03-01T01:00:00Z'),
    // Whoever may edit the output Secret may write any claims there: these name another request's anchor.
    token: fakeToken({ jti: 'forged', serviceAccountUid: 'victim-sa-uid', anchor: 'victim-token-x', anchorUid: 'victim-anchor-uid' }),
  };
  const parent = { metadata: { namespace: 'tenant', name: 'req', uid: 'req-uid' } };

  it('takes the ServiceAccount and anchor an observed token names, but never a UID from its unverified claims', function () {
    const holdings = holdingsOf(parent, [{ record, anchor: 'victim-token-x' }]);
    expect(holdings.serviceAccounts).to.deep.equal([{ serviceAccount: 'tenant/sa', targetCluster: 'provider/shared', targetClusterUID: 'c-uid' }]);
    expect(holdings.anchors).to.have.length(1);
    expect(holdings.anchors[0]).to.include({ anchor: 'victim-token-x' });
    expect(holdings.anchors[0]).to.not.have.property('anchorUID');
    expect(JSON.stringify(holdings)).to.not.match(/victim-(sa|anchor)-uid/);
  });

  it('keeps the UIDs the status recorded (from the API server\'s answers to the webhook)', function () {
    const recorded = {
      ...parent,
      status: {
        serviceAccounts: [{ serviceAccount: 'tenant/sa', targetCluster: 'provider/shared', targetClusterUID: 'c-uid', clusterID: 'id', serviceAccountUID: 'sa-uid' }],
        tokenAnchors: [{ serviceAccount: 'tenant/sa', targetCluster: 'provider/shared', targetClusterUID: 'c-uid', clusterID: 'id',
          anchor: 'sa-token-a', anchorUID: 'anchor-uid', rotation: '', expiresAt: '2026-03-01T01:00:00Z' }],
      },
    };
    const holdings = holdingsOf(recorded, [{ record, anchor: 'sa-token-a' }]);
    expect(holdings.serviceAccounts.map((entry) => entry.serviceAccountUID)).to.deep.equal(['sa-uid']);
    expect(holdings.anchors.map((entry) => entry.anchorUID)).to.deep.equal(['anchor-uid']);
  });
});
