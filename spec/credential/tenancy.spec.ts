import { expect } from 'chai';
import {
  grantsNeeded, isProtectedNamespace, protectedRefusal, refusalMessage, requesterOf, scopeOfRecord, type Scope,
} from '../../server/credential/tenancy.js';

const cluster = { namespace: 'dpf', name: 'dpu-1' };
const scope = (overrides: Partial<Scope> = {}): Scope => ({ requestNamespace: 'team-a', serviceAccountNamespace: 'team-a', ...overrides });

describe('tenancy: what a request may reach', function () {
  it('needs no grant for a host ServiceAccount in its own namespace, and `use` on serviceaccounts for another', function () {
    expect(grantsNeeded(scope())).to.deep.equal([]);
    expect(grantsNeeded(scope({ serviceAccountNamespace: 'team-b' }))).to.deep.equal([
      { group: '', resource: 'serviceaccounts', namespace: 'team-b', what: 'ServiceAccounts in namespace team-b' },
    ]);
  });

  it('needs, for a DPUCluster in another namespace, `use` on it there; the mirror of its own namespace comes with it', function () {
    expect(grantsNeeded(scope({ targetCluster: cluster }))).to.deep.equal([
      { group: 'provisioning.dpu.nvidia.com', resource: 'dpuclusters', namespace: 'dpf', name: 'dpu-1', what: 'DPUCluster dpf/dpu-1' },
    ]);
  });

  it('needs `use` on targetnamespaces/<namespace> in the DPUCluster\'s namespace for any other namespace of its cluster, beside it too', function () {
    const beside = scope({ requestNamespace: 'dpf', serviceAccountNamespace: 'ovn', targetCluster: cluster });
    expect(grantsNeeded(beside)).to.deep.equal([
      { group: 'svc.dpu.nvidia.com', resource: 'targetnamespaces', namespace: 'dpf', name: 'ovn', what: 'namespace ovn of DPUCluster dpf/dpu-1' },
    ]);
    expect(grantsNeeded(scope({ requestNamespace: 'dpf', serviceAccountNamespace: 'dpf', targetCluster: cluster }))).to.deep.equal([]);
    expect(grantsNeeded(scope({ serviceAccountNamespace: 'ovn', targetCluster: cluster })).map((reference) => reference.resource))
      .to.deep.equal(['dpuclusters', 'targetnamespaces']);
  });

  it('protects kube-* always and the configured names and prefixes, in every cluster', function () {
    expect(isProtectedNamespace('kube-system', [])).to.equal(true);
    expect(isProtectedNamespace('kube-node-lease', [])).to.equal(true);
    expect(isProtectedNamespace('kubeflow', [])).to.equal(false);
    expect(isProtectedNamespace('metacontroller', ['metacontroller'])).to.equal(true);
    expect(isProtectedNamespace('metacontroller-2', ['metacontroller'])).to.equal(false);
    expect(isProtectedNamespace('openshift-etcd', ['openshift-*'])).to.equal(true);
    expect(protectedRefusal(scope({ serviceAccountNamespace: 'kube-system', targetCluster: cluster }), [])).to.deep.equal({
      kind: 'protected', namespace: 'kube-system', where: 'DPUCluster dpf/dpu-1',
    });
    expect(protectedRefusal(scope(), ['metacontroller'])).to.equal(undefined);
  });

  it('asks as exactly the user and groups of the admission policy\'s authorizer.serviceAccount (no system:authenticated)', function () {
    expect(requesterOf('team-a')).to.deep.equal({
      user: 'system:serviceaccount:team-a:dpu-credential-requests',
      groups: ['system:serviceaccounts', 'system:serviceaccounts:team-a'],
    });
  });

  it('reads the scope of a recorded ServiceAccount back', function () {
    expect(scopeOfRecord('team-a', 'ovn/sa', 'dpf/dpu-1')).to.deep.equal(scope({ serviceAccountNamespace: 'ovn', targetCluster: cluster }));
    expect(scopeOfRecord('team-a', 'team-b/sa', undefined)).to.deep.equal(scope({ serviceAccountNamespace: 'team-b' }));
  });

  it('names the grant a refusal needs, and where', function () {
    const [reference] = grantsNeeded(scope({ requestNamespace: 'dpf', serviceAccountNamespace: 'ovn', targetCluster: cluster }));
    expect(refusalMessage('dpf', { kind: 'ungranted', reference: reference! })).to.equal(
      'namespace dpf may not use namespace ovn of DPUCluster dpf/dpu-1: it needs a grant there, a RoleBinding in namespace dpf that gives '
      + 'verb use on targetnamespaces/ovn (a Role with resourceNames [ovn], or ClusterRole dpu-credential-target-namespaces for all of them) '
      + 'to group system:serviceaccounts:dpf');
  });
});
