// The target clients behind DPUClusters, against real API servers: a DPUCluster's admin
// kubeconfig Secret is read again when it is due, by one sync, however many arrive at once.
import { expect } from 'chai';
import type { DpuClusterObject } from '../../server/api.js';
import { HostCluster, kubeconfigRecheckMs, TargetClusters } from '../../server/kube/clusters.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { installDpuClusterCrd, registerDpuCluster } from '../../harness/dpucluster.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';
import { connectionOf } from '../../harness/connection.js';

describe('TargetClusters (real API servers)', function () {
  let host: ControlPlane;
  let target: ControlPlane;
  let clusters: TargetClusters;
  let dpuCluster: DpuClusterObject;
  let nowMs = Date.now();
  const hostCalls: string[] = [];

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    [host, target] = await Promise.all([startControlPlane({ name: 'clusters-host' }), startControlPlane({ name: 'clusters-target' })]);
    await installDpuClusterCrd(host.adminKubeConfig());
    const registered = await registerDpuCluster(host.adminKubeConfig(), target, { name: 'tenant' });
    dpuCluster = { metadata: { name: registered.name, namespace: registered.namespace, uid: registered.uid }, spec: { kubeconfig: registered.kubeconfigSecretName } };
    const options = {
      timeoutMs: 5_000, now: () => nowMs,
      observeApiCall: (cluster: 'host' | 'target', method: string) => { if (cluster === 'host') hostCalls.push(method); },
    };
    clusters = new TargetClusters(await HostCluster.fromConfig(connectionOf(host.adminKubeConfig()), options), options);
  });

  after(async function () {
    clusters?.close();
    await Promise.all([host?.stop(), target?.stop()]);
  });

  it('reads the admin kubeconfig once when it is due, while the syncs arriving meanwhile keep the client', async function () {
    const first = await clusters.forDpuCluster(dpuCluster);
    expect(hostCalls).to.deep.equal(['GET']);
    await Promise.all(Array.from({ length: 20 }, () => clusters.forDpuCluster(dpuCluster)));
    expect(hostCalls, 'within the recheck interval').to.have.length(1);

    nowMs += kubeconfigRecheckMs + 1_000;
    const storm = await Promise.all(Array.from({ length: 20 }, () => clusters.forDpuCluster(dpuCluster)));
    expect(hostCalls, 'one read for 20 syncs').to.have.length(2);
    expect(storm.every((each) => each === first)).to.equal(true);
    await clusters.forDpuCluster(dpuCluster);
    expect(hostCalls, 'read a moment ago').to.have.length(2);
  });
});
