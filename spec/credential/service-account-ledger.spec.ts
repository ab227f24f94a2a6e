import { expect } from 'chai';
import {
  clusterIdOf, leftoverServiceAccounts, recordedServiceAccounts, sameServiceAccount, withServiceAccount,
} from '../../server/credential/service-account-ledger.js';
import type { DpuServiceCredentialRequestStatus, ServiceAccountEntry } from '../../server/api.js';

const one = clusterIdOf({ server: 'https://10.0.0.1:6443', caPem: 'CA' });

describe('the ServiceAccount ledger', function () {
  it('counts the single identity of an older status as recorded, once', function () {
    const legacy: DpuServiceCredentialRequestStatus = { serviceAccount: 'default/a', targetCluster: 'default/x', targetClusterUID: 'ux' };
    expect(recordedServiceAccounts(legacy)).to.deep.equal([{ serviceAccount: 'default/a', targetCluster: 'default/x', targetClusterUID: 'ux' }]);
    const both = { ...legacy, serviceAccounts: [{ serviceAccount: 'default/a', targetCluster: 'default/x', clusterID: one }] };
    expect(recordedServiceAccounts(both)).to.have.length(1);
  });

  it('ignores entries a hand edit broke', function () {
    const status = { serviceAccounts: [{ serviceAccount: 'no-slash' }, { serviceAccount: 'default/a', clusterID: 7 }, 'x', { serviceAccount: 'default/b' }] };
    expect(recordedServiceAccounts(status as unknown as DpuServiceCredentialRequestStatus)).to.deep.equal([{ serviceAccount: 'default/b' }]);
  });

  it('tells clusters apart by their API server, not by the DPUCluster that names them', function () {
    expect(clusterIdOf({ server: 'https://10.0.0.1:6443', caPem: 'CA\n' })).to.equal(one);
    expect(clusterIdOf({ server: 'https://10.0.0.2:6443', caPem: 'CA' })).to.not.equal(one);
    expect(clusterIdOf({ server: 'https://10.0.0.1:6443', caPem: 'other CA' })).to.not.equal(one);
    const viaX = { serviceAccount: 'default/s', targetCluster: 'default/x', clusterID: one };
    const viaY = { serviceAccount: 'default/s', targetCluster: 'default/y', clusterID: one };
    expect(sameServiceAccount(viaX, viaY)).to.equal(true);
    expect(sameServiceAccount(viaX, { ...viaY, clusterID: 'another' })).to.equal(false);
    // Without an ID (an older status), the reference decides.
    expect(sameServiceAccount({ serviceAccount: 'default/s', targetCluster: 'default/x' }, viaY)).to.equal(false);
  });

  it('leaves for deletion everything but the ServiceAccount the current token belongs to', function () {
    const current = { serviceAccount: 'default/c', targetCluster: 'default/y', clusterID: one };
    let ledger: ServiceAccountEntry[] = [{ serviceAccount: 'default/a', targetCluster: 'default/x' }, { serviceAccount: 'default/c', targetCluster: 'default/x', clusterID: one }];
    ledger = withServiceAccount(ledger, { serviceAccount: 'default/b', targetCluster: 'default/x', clusterID: one });
    ledger = withServiceAccount(ledger, current);
    expect(ledger.map((entry) => entry.serviceAccount)).to.deep.equal(['default/a', 'default/b', 'default/c']);
    expect(leftoverServiceAccounts(ledger, current).map((entry) => entry.serviceAccount)).to.deep.equal(['default/a', 'default/b']);
  });
});
