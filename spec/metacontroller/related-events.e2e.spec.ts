// Related objects as Metacontroller v4.17.2 follows them, through the driver on real API
// servers: every change of a DPUCluster (its status included) enqueues every request whose
// customize answer names it, and no other; a deleted DPUCluster does too; a customize answer
// is kept 20 minutes, after which the next sync, or the next related event (for every
// parent at once), calls customize again. The shipped CompositeController has no customize
// hook any more: these run the driver on the controller of 0.3.x, whose customize named each
// request's DPUCluster (support/metacontroller/related-controller.ts).
import { CustomObjectsApi } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { KubeObject } from '../../server/api.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { dpuClusterApi, registerDpuCluster, updateDpuClusterStatus } from '../../harness/dpucluster.js';
import { condition } from '../../harness/kube-helpers.js';
import { customizeCacheTtlMs, MetacontrollerDriver } from '../../harness/metacontroller/driver.js';
import { startRelatedController, type RelatedController } from '../../harness/metacontroller/related-controller.js';
import { controlPlaneStartTimeoutMs, serviceNetwork, WebhookEnv } from '../../harness/webhook-env.js';
import { connectionOf } from '../../harness/connection.js';

describe('related DPUClusters enqueue the requests that name them; customize answers expire after 20 minutes (real API servers)', function () {
  let env: WebhookEnv;
  let related: RelatedController;
  let counter = 0;
  const fresh = (prefix: string) => `${prefix}-${++counter}`;
  const spec = (name: string, cluster: string) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: cluster }, type: 'kubeconfig',
    secret: { name: `${name}-cred` },
  });
  const hookCalls = (driver: MetacontrollerDriver, hook: string) => driver.calls.filter((call) => call.hook === hook).length;
  const objects = () => env.hostConfig().makeApiClient(CustomObjectsApi);
  /** What DPF's DPUCluster controller does at each reconcile: a status update (here the phase and a condition). */
  const bumpStatus = async (cluster: string, phase: string): Promise<KubeObject> => {
    const client = new KubeRestClient(connectionOf(env.hostConfig()), { timeoutMs: 10_000 });
    try {
      return await updateDpuClusterStatus(client, 'default', cluster, phase) as KubeObject;
    } finally {
      client.close();
    }
  };
  /** Requests made and reconciled to Ready, each naming `cluster`. */
  const readyRequests = async (prefix: string, cluster: string, count: number) => {
    const names = Array.from({ length: count }, () => fresh(prefix));
    for (const name of names) {
      await env.createRequest(name, spec(name, cluster));
      await env.driver.reconcile('default', name);
      expect(condition(await env.driver.readParent('default', name), 'Ready')).to.include({ status: 'True' });
    }
    return names.map((name) => `default/${name}`);
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start();
    related = await startRelatedController();
    // The environment's driver follows the shipped controller: this one, the 0.3.x controller (env.stop() closes it).
    env.driver.close();
    env.driver = await startDriver();
  });

  const startDriver = async () => MetacontrollerDriver.start({
    host: env.hostConfig(), network: await serviceNetwork(env.securePort), now: () => env.clock.now().getTime(), controllerPath: related.controllerPath,
  });

  afterEach(function () {
    env?.clock.reset();
  });

  after(async function () {
    this.timeout(60_000);
    await env?.stop();
    await related?.close();
  });

  it('re-syncs every request naming a DPUCluster when its status changes, and no request naming another', async function () {
    this.timeout(60_000);
    const [bumped, other] = [fresh('fan-a'), fresh('fan-b')];
    await registerDpuCluster(env.hostConfig(), env.target, { name: bumped });
    await registerDpuCluster(env.hostConfig(), env.target, { name: other });
    const naming = await readyRequests('fa', bumped, 3);
    await readyRequests('fb', other, 2);
    await env.driver.runDue(); // whatever the setup left ready
    const [syncsBefore, enqueuesBefore] = [hookCalls(env.driver, 'sync'), env.driver.relatedEnqueues];

    const patched = await bumpStatus(bumped, 'Ready');
    await env.driver.relatedObserved(patched);
    expect(env.driver.relatedEnqueues - enqueuesBefore).to.equal(3);
    expect((await env.driver.runDue()).sort()).to.deep.equal([...naming].sort());
    expect(hookCalls(env.driver, 'sync') - syncsBefore).to.equal(3);
    // The sync's input carries the DPUCluster as the event brought it.
    const related = (JSON.parse(env.driver.lastHookRequest) as { related: Record<string, Record<string, { status?: { phase?: string } }>> })
      .related['DPUCluster.provisioning.dpu.nvidia.com/v1alpha1']!;
    expect(related[`default/${bumped}`]?.status?.phase).to.equal('Ready');

    // A second bump: the same again (nothing is remembered between events).
    await env.driver.relatedObserved(await bumpStatus(bumped, 'NotReady'));
    expect((await env.driver.runDue()).sort()).to.deep.equal([...naming].sort());
  });

  it('makes one related informer when the first syncs run at once, so one update enqueues each request once', async function () {
    this.timeout(60_000);
    const cluster = fresh('fan-race');
    await registerDpuCluster(env.hostConfig(), env.target, { name: cluster });
    const naming = await readyRequests('fr', cluster, 3);
    // A driver of its own: its first syncs make the DPUCluster informer, concurrently.
    const driver = await startDriver();
    try {
      await Promise.all(naming.map((key) => driver.reconcile('default', key.split('/')[1]!)));
      const enqueuesBefore = driver.relatedEnqueues;
      await driver.relatedObserved(await bumpStatus(cluster, 'Ready'));
      expect(driver.relatedEnqueues - enqueuesBefore).to.equal(naming.length);
    } finally {
      driver.close();
    }
  });

  it('re-syncs every request naming a DPUCluster when it is deleted, and they then say it is gone', async function () {
    this.timeout(60_000);
    const cluster = fresh('fan-gone');
    const ref = await registerDpuCluster(env.hostConfig(), env.target, { name: cluster });
    const naming = await readyRequests('fg', cluster, 2);
    await env.driver.runDue();

    await objects().deleteNamespacedCustomObject({ ...dpuClusterApi, namespace: 'default', name: cluster });
    // A sync whose related objects lack the DPUCluster asks the webhook's own watch next, then the API: if a
    // sync has started that watch, it must have seen the deletion too (related objects alone start none).
    await env.clusters.host.dpuClusters?.until((cache) => cache.lookup('default', cluster) === null);
    await env.driver.relatedObserved({ apiVersion: `${dpuClusterApi.group}/${dpuClusterApi.version}`, kind: 'DPUCluster', metadata: { namespace: ref.namespace, name: cluster } }, { gone: true });
    // Each is synced twice: the answer drops the Secret minted for the cluster, and that delete enqueues it again.
    expect([...new Set(await env.driver.runDue())].sort()).to.deep.equal([...naming].sort());
    for (const key of naming) {
      expect(condition(await env.driver.readParent('default', key.split('/')[1]!), 'Ready')).to.include({ status: 'False' });
    }
  });

  it('calls customize again at the first sync after its answer is 20 minutes old, then keeps the new answer', async function () {
    this.timeout(60_000);
    const cluster = fresh('fan-ttl');
    await registerDpuCluster(env.hostConfig(), env.target, { name: cluster });
    const customizeBefore = hookCalls(env.driver, 'customize');
    const [key] = await readyRequests('ft', cluster, 1);
    const name = key!.split('/')[1]!;
    expect(hookCalls(env.driver, 'customize') - customizeBefore).to.equal(1);

    env.clock.advance(customizeCacheTtlMs - 1_000);
    await env.driver.syncOnce('default', name);
    expect(hookCalls(env.driver, 'customize') - customizeBefore).to.equal(1);

    env.clock.advance(2_000);
    await env.driver.syncOnce('default', name);
    expect(hookCalls(env.driver, 'customize') - customizeBefore).to.equal(2);
    await env.driver.syncOnce('default', name);
    expect(hookCalls(env.driver, 'customize') - customizeBefore).to.equal(2);
  });

  it('after 20 minutes, one DPUCluster event calls customize for every parent (also those naming other clusters), and enqueues only those naming it', async function () {
    this.timeout(60_000);
    const [bumped, other] = [fresh('fan-x'), fresh('fan-y')];
    await registerDpuCluster(env.hostConfig(), env.target, { name: bumped });
    await registerDpuCluster(env.hostConfig(), env.target, { name: other });
    const naming = await readyRequests('fx', bumped, 2);
    await readyRequests('fy', other, 1);
    await env.driver.runDue();

    // Past every answer kept so far, the earlier test's included (it answered at +20 minutes).
    env.clock.advance(2 * customizeCacheTtlMs + 10_000);
    const parents = (await env.driver.parents.list('')).length;
    const [customizeBefore, enqueuesBefore, syncsBefore] = [hookCalls(env.driver, 'customize'), env.driver.relatedEnqueues, hookCalls(env.driver, 'sync')];
    await env.driver.relatedObserved(await bumpStatus(bumped, 'Ready'));
    expect(hookCalls(env.driver, 'customize') - customizeBefore).to.equal(parents);
    expect(env.driver.relatedEnqueues - enqueuesBefore).to.equal(naming.length);
    expect(hookCalls(env.driver, 'sync')).to.equal(syncsBefore);

    // The syncs that follow find the answers the event renewed.
    for (const key of naming) await env.driver.syncOnce('default', key.split('/')[1]!);
    expect(hookCalls(env.driver, 'customize') - customizeBefore).to.equal(parents);
  });
});
