// The shipped CompositeController has no customize hook: Metacontroller follows no
// DPUCluster, and the webhook reads DPUClusters from a watch of its own
// (kube/dpucluster-cache.ts), falling back to a GET for one the watch has not brought. So a
// DPUCluster status update (DPF's controller makes many) costs nothing; a deleted or
// recreated DPUCluster is acted on at the periodic resync (resyncPeriodSeconds: 300);
// a DPUCluster made just before its request is still found. Through the driver on real API servers.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { DpuServiceCredentialRequest, KubeObject } from '../../server/api.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { connectionOf } from '../../harness/connection.js';
import { dpuClusterApi, registerDpuCluster, updateDpuClusterStatus } from '../../harness/dpucluster.js';
import { condition } from '../../harness/kube-helpers.js';
import type { MetacontrollerDriver } from '../../harness/metacontroller/driver.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';

describe('DPUClusters from the webhook\'s own watch: no fan-out, the periodic resync for deletion and recreation (real API servers)', function () {
  let env: WebhookEnv;
  let counter = 0;
  const fresh = (prefix: string) => `${prefix}-${++counter}`;
  const spec = (name: string, cluster: string) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: cluster }, type: 'kubeconfig',
    secret: { name: `${name}-cred` },
  });
  const syncCalls = (driver: MetacontrollerDriver) => driver.calls.filter((call) => call.hook === 'sync').length;
  const objects = () => env.hostConfig().makeApiClient(CustomObjectsApi);
  const targetCore = () => env.target.adminKubeConfig().makeApiClient(CoreV1Api);
  const serviceAccountUid = async (name: string) =>
    (await targetCore().readNamespacedServiceAccount({ namespace: 'default', name })).metadata?.uid;
  /** The webhook's DPUCluster watch: started by the first sync that named a DPUCluster. */
  const watch = () => {
    const cache = env.clusters.host.dpuClusters;
    if (!cache) throw new Error('no sync has started the DPUCluster watch yet');
    return cache;
  };
  /** What DPF's DPUCluster controller does at each reconcile: a status update (here the phase and a condition). */
  const bumpStatus = async (cluster: string, phase: string): Promise<KubeObject> => {
    const client = new KubeRestClient(connectionOf(env.hostConfig()), { timeoutMs: 10_000 });
    try {
      return await updateDpuClusterStatus(client, 'default', cluster, phase) as KubeObject;
    } finally {
      client.close();
    }
  };
  const readyRequest = async (prefix: string, cluster: string): Promise<{ name: string; key: string; request: DpuServiceCredentialRequest }> => {
    const name = fresh(prefix);
    await env.createRequest(name, spec(name, cluster));
    await env.driver.reconcile('default', name);
    const request = await env.driver.readParent('default', name);
    expect(condition(request, 'Ready')).to.include({ status: 'True' });
    return { name, key: `default/${name}`, request: request! };
  };
  /** Deletes a DPUCluster and waits until the webhook's watch has seen it go. */
  const deleteDpuCluster = async (cluster: string) => {
    await objects().deleteNamespacedCustomObject({ ...dpuClusterApi, namespace: 'default', name: cluster });
    await watch().until((cache) => cache.lookup('default', cluster) === null);
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
  });

  afterEach(function () {
    env?.clock.reset();
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
  });

  // First in this file: no sync has started the watch yet, so the first lookup cannot find it there.
  it('finds a DPUCluster made just before its request with a GET, while its watch has not synced', async function () {
    this.timeout(60_000);
    expect(env.clusters.host.dpuClusters).to.equal(undefined);
    const cluster = fresh('just-made');
    await registerDpuCluster(env.hostConfig(), env.target, { name: cluster });
    const { request } = await readyRequest('jm', cluster);
    expect(request.status?.targetCluster).to.equal(`default/${cluster}`);
    // The first lookup started the watch; it catches up on its own and then holds the DPUCluster.
    await watch().until((cache) => cache.lookup('default', cluster) !== undefined);
    expect(watch().lookup('default', cluster)?.spec?.kubeconfig).to.equal(`${cluster}-admin-kubeconfig`);
  });

  it('enqueues nothing and syncs nothing when a DPUCluster\'s status changes: the controller follows no related resource', async function () {
    this.timeout(60_000);
    const cluster = fresh('quiet');
    await registerDpuCluster(env.hostConfig(), env.target, { name: cluster });
    await readyRequest('q', cluster);
    await readyRequest('q', cluster);
    await env.driver.runDue(); // whatever the setup left ready
    const [syncsBefore, enqueuesBefore] = [syncCalls(env.driver), env.driver.relatedEnqueues];

    for (const phase of ['Ready', 'NotReady', 'Ready']) {
      const patched = await bumpStatus(cluster, phase);
      // The webhook's watch has the update; Metacontroller has no informer that could see it.
      await watch().until((cache) => BigInt(cache.lookup('default', cluster)?.metadata?.resourceVersion ?? '0') >= BigInt(patched.metadata?.resourceVersion ?? '0'));
      await env.driver.relatedObserved(patched);
    }
    expect(env.driver.relatedInformerCount).to.equal(0);
    expect(env.driver.relatedEnqueues).to.equal(enqueuesBefore);
    expect(await env.driver.runDue()).to.deep.equal([]);
    expect(syncCalls(env.driver)).to.equal(syncsBefore);
    // What the watch keeps of a DPUCluster: no status.
    expect(watch().lookup('default', cluster)).to.not.have.property('status');
  });

  it('says TargetClusterNotFound for a deleted DPUCluster at the periodic resync, and drops the Secret minted for it', async function () {
    this.timeout(60_000);
    // A driver of its own (Metacontroller restarted): its periodic resync is 300 s from now.
    await env.restartMetacontroller();
    const cluster = fresh('deleted');
    await registerDpuCluster(env.hostConfig(), env.target, { name: cluster });
    const { name, key } = await readyRequest('d', cluster);
    await env.driver.runDue();

    await deleteDpuCluster(cluster);
    // Nothing follows the DPUCluster for Metacontroller: the deletion enqueues no request.
    expect(await env.driver.runDue()).to.deep.equal([]);
    expect(condition(await env.driver.readParent('default', name), 'Ready')).to.include({ status: 'True' });

    env.clock.advance(300_000);
    expect(await env.driver.runDue()).to.include(key);
    const ready = condition(await env.driver.readParent('default', name), 'Ready');
    expect(ready).to.include({ status: 'False', reason: 'TargetClusterNotFound' });
    expect(ready?.message).to.contain(`default/${cluster}`);
    expect(await env.driver.secrets.get('default', `${name}-cred`)).to.equal(undefined);
  });

  it('makes a new ServiceAccount and token for a DPUCluster deleted and recreated under the same name (a new UID) at the periodic resync', async function () {
    this.timeout(60_000);
    await env.restartMetacontroller();
    const cluster = fresh('recreated');
    const first = await registerDpuCluster(env.hostConfig(), env.target, { name: cluster });
    const { name, key, request: before } = await readyRequest('r', cluster);
    await env.driver.runDue();
    expect(before.status?.targetClusterUID).to.equal(first.uid);
    const oldServiceAccountUid = await serviceAccountUid(`${name}-sa`);

    await deleteDpuCluster(cluster);
    // The same name again, on a new cluster: here the same target API server with the
    // ServiceAccount gone, as a new cluster would be.
    await targetCore().deleteNamespacedServiceAccount({ namespace: 'default', name: `${name}-sa` });
    const recreated = await objects().createNamespacedCustomObject({
      ...dpuClusterApi, namespace: 'default',
      body: {
        apiVersion: `${dpuClusterApi.group}/${dpuClusterApi.version}`, kind: 'DPUCluster', metadata: { name: cluster, namespace: 'default' },
        spec: { type: 'static', maxNodes: 10, version: 'v1.36.3', kubeconfig: first.kubeconfigSecretName },
      },
    }) as KubeObject;
    const newUid = recreated.metadata!.uid!;
    expect(newUid).to.not.equal(first.uid);
    await watch().until((cache) => cache.lookup('default', cluster)?.metadata?.uid === newUid);
    expect(await env.driver.runDue()).to.deep.equal([]);

    env.clock.advance(300_000);
    expect(await env.driver.runDue()).to.include(key);
    await env.driver.reconcile('default', name);
    const after = await env.driver.readParent('default', name);
    expect(condition(after, 'Ready')).to.include({ status: 'True' });
    expect(after?.status?.targetClusterUID).to.equal(newUid);
    expect(after?.status?.tokenID).to.be.a('string').and.not.equal(before.status?.tokenID);
    const newServiceAccountUid = await serviceAccountUid(`${name}-sa`);
    expect(newServiceAccountUid).to.be.a('string').and.not.equal(oldServiceAccountUid);
  });
});
