// The DPUCluster cache against a real API server: "unknown" until its first list, then what
// existed before it started; it follows creation, updates and deletion through its watch,
// keeps only what a sync reads, and lists again after the API server restarts.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { DpuClusterObject } from '../../server/api.js';
import { DpuClusterCache } from '../../server/kube/dpucluster-cache.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { connectionOf } from '../../harness/connection.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { dpuClusterApi, installDpuClusterCrd } from '../../harness/dpucluster.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';

describe('DpuClusterCache (real API server)', function () {
  let plane: ControlPlane;
  let client: KubeRestClient;
  let cache: DpuClusterCache;
  const objects = () => plane.adminKubeConfig().makeApiClient(CustomObjectsApi);
  const create = async (name: string, namespace = 'default') => await objects().createNamespacedCustomObject({
    ...dpuClusterApi, namespace,
    body: {
      apiVersion: `${dpuClusterApi.group}/${dpuClusterApi.version}`, kind: 'DPUCluster', metadata: { name, namespace },
      spec: { type: 'static', maxNodes: 10, version: 'v1.36.3', kubeconfig: `${name}-admin-kubeconfig` },
    },
  }) as DpuClusterObject;

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'dpucluster-cache' });
    await installDpuClusterCrd(plane.adminKubeConfig());
    await create('before-start');
    client = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 2_000 });
  });

  after(async function () {
    cache?.close();
    client?.close();
    await plane?.stop();
  });

  it('answers "unknown" until its first list, then holds what existed before it started', async function () {
    cache = new DpuClusterCache(client);
    // Its list is under way: no answer can have come back before this line.
    expect(cache.lookup('default', 'before-start')).to.equal(undefined);
    await cache.until((current) => current.isSynced);
    expect(cache.lookup('default', 'before-start')?.spec).to.deep.equal({ kubeconfig: 'before-start-admin-kubeconfig' });
    expect(cache.lookup('default', 'never-made')).to.equal(null);
  });

  it('follows creation, a status update and deletion, keeping identity, spec.kubeconfig and deletionTimestamp only', async function () {
    const created = await create('followed');
    await cache.until((current) => current.lookup('default', 'followed')?.metadata?.uid === created.metadata?.uid);
    // What DPF's DPUCluster controller writes at each reconcile.
    const patched = await client.request<DpuClusterObject>('PATCH', `/apis/${dpuClusterApi.group}/${dpuClusterApi.version}/namespaces/default/dpuclusters/followed/status`,
      { status: { phase: 'Ready' } }, { contentType: 'application/merge-patch+json' });
    await cache.until((current) => current.lookup('default', 'followed')?.metadata?.resourceVersion === patched.metadata?.resourceVersion);
    expect(cache.lookup('default', 'followed')).to.deep.equal({
      apiVersion: 'provisioning.dpu.nvidia.com/v1alpha1', kind: 'DPUCluster',
      metadata: { namespace: 'default', name: 'followed', uid: created.metadata?.uid, resourceVersion: patched.metadata?.resourceVersion },
      spec: { kubeconfig: 'followed-admin-kubeconfig' },
    });

    await objects().deleteNamespacedCustomObject({ ...dpuClusterApi, namespace: 'default', name: 'followed' });
    await cache.until((current) => current.lookup('default', 'followed') === null);
  });

  it('lists again after the API server restarts, "unknown" while it is down', async function () {
    this.timeout(60_000);
    await plane.stopApiServer();
    await cache.until((current) => !current.isSynced);
    expect(cache.lookup('default', 'before-start')).to.equal(undefined);
    await plane.startApiServer();
    const created = await create('after-restart');
    await cache.until((current) => current.lookup('default', 'after-restart')?.metadata?.uid === created.metadata?.uid);
    expect(cache.stoppedBy).to.equal(undefined);
  });
});
