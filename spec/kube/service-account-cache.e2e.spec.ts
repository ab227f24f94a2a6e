// The managed-ServiceAccount cache against a real API server: it follows creations and
// deletions through its watch, ignores unmanaged ServiceAccounts, and recovers after the
// API server restarts.
import { CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { managedLabels } from '../../server/credential/names.js';
import { KubeRestClient } from '../../server/kube/rest.js';
import { ServiceAccountCache } from '../../server/kube/service-account-cache.js';
import { startControlPlane, type ControlPlane } from '../../harness/control-plane.js';
import { eventually } from '../../harness/eventually.js';
import { controlPlaneStartTimeoutMs } from '../../harness/webhook-env.js';
import { connectionOf } from '../../harness/connection.js';

describe('ServiceAccountCache (real API server)', function () {
  let plane: ControlPlane;
  let client: KubeRestClient;
  let cache: ServiceAccountCache;
  const core = () => plane.adminKubeConfig().makeApiClient(CoreV1Api);

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    plane = await startControlPlane({ name: 'cache' });
    await core().createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'before-start', labels: managedLabels('default', 'r0') } } });
    client = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 2_000 });
    cache = new ServiceAccountCache(client);
  });

  after(async function () {
    cache?.close();
    client?.close();
    await plane?.stop();
  });

  it('answers "unknown" (undefined) until its first list, then holds what existed before it started and "absent" (null) for the rest', async function () {
    // A cache just made has not listed yet: the list needs the network, and has not been answered.
    const fresh = new ServiceAccountCache(client);
    try {
      expect(fresh.isSynced).to.equal(false);
      expect(fresh.lookup('default', 'before-start')).to.equal(undefined);
      expect(fresh.lookup('default', 'never-made')).to.equal(undefined);
      await eventually(() => fresh.isSynced, 'its first list is in');
      expect(fresh.lookup('default', 'before-start')?.metadata?.labels).to.deep.equal(managedLabels('default', 'r0'));
      expect(fresh.lookup('default', 'never-made')).to.equal(null);
    } finally {
      fresh.close();
    }
    await eventually(() => cache.isSynced, 'synced');
    expect(cache.lookup('default', 'before-start')?.metadata?.labels).to.deep.equal(managedLabels('default', 'r0'));
  });

  it('follows creation and deletion of managed ServiceAccounts, and never holds unmanaged ones', async function () {
    const created = await core().createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'managed', labels: managedLabels('default', 'r1') } } });
    await core().createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'unmanaged' } } });
    await eventually(() => cache.lookup('default', 'managed')?.metadata?.uid === created.metadata?.uid, 'managed cached');
    expect(cache.lookup('default', 'unmanaged')).to.equal(null);
    await core().deleteNamespacedServiceAccount({ namespace: 'default', name: 'managed' });
    await eventually(() => cache.lookup('default', 'managed') === null, 'deletion seen');
  });

  it('resynchronises after the API server restarts', async function () {
    this.timeout(60_000);
    await plane.stopApiServer();
    await eventually(() => !cache.isSynced, 'unsynced while the API server is down');
    await plane.startApiServer();
    const created = await core().createNamespacedServiceAccount({ namespace: 'default', body: { metadata: { name: 'after-restart', labels: managedLabels('default', 'r2') } } });
    await eventually(() => cache.lookup('default', 'after-restart')?.metadata?.uid === created.metadata?.uid, 'resynced', { timeoutMs: 30_000 });
  });
});
