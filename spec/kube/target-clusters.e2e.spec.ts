// The target clients behind DPUClusters, against real API servers: a DPUCluster's admin
// kubeconfig Secret is read again when it is due, by one sync, however many arrive at once.
import { expect } from 'chai';
import type { DpuClusterObject } from '../../server/api.js';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeconfigRecheckMs, TargetClusters } from '../../server/kube/clusters.js';
import { HostCluster } from '../../server/kube/host-cluster.js';
import { InvalidKubeconfigError } from '../../server/kube/kubeconfig.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { installDpuClusterCrd, registerDpuCluster } from '../../harness/dpucluster.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';
import { connectionOf } from '../../harness/connection.js';
import { withoutTrailingSlashes } from '../../server/kube/kubeconfig-text.js';

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
    clusters = new TargetClusters(HostCluster.fromConfig(connectionOf(host.adminKubeConfig()), options), options);
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

  it('answers an unchanged invalid kubeconfig with the same error at every sync without parsing it again, and reads it once fixed', async function () {
    const registered = await registerDpuCluster(host.adminKubeConfig(), target, { name: 'brackets', kubeconfigYaml: '['.repeat(60_000) });
    const broken: DpuClusterObject = {
      metadata: { name: registered.name, namespace: registered.namespace, uid: registered.uid }, spec: { kubeconfig: registered.kubeconfigSecretName },
    };
    const refusal = async () => {
      try {
        await clusters.forDpuCluster(broken);
      } catch (error) {
        return error;
      }
      return undefined;
    };
    hostCalls.length = 0;
    const first = await refusal();
    expect(first).to.be.instanceOf(InvalidKubeconfigError);
    expect((first as Error).message).to.contain('the super-admin.conf of Secret default/brackets-admin-kubeconfig').and.to.contain('flow brackets');
    const second = await refusal();
    expect(second, 'the error of the first parse, not a new one').to.equal(first);
    expect(hostCalls, 'the Secret is read at each sync').to.deep.equal(['GET', 'GET']);

    await host.adminKubeConfig().makeApiClient(CoreV1Api).replaceNamespacedSecret({
      name: registered.kubeconfigSecretName, namespace: registered.namespace,
      body: { metadata: { name: registered.kubeconfigSecretName }, stringData: { 'super-admin.conf': target.adminKubeconfigYaml() } },
    });
    expect((await clusters.forDpuCluster(broken)).endpoint.server).to.equal(withoutTrailingSlashes(target.adminKubeConfig().getCurrentCluster()!.server));
  });
});
