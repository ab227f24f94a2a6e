// Time as Metacontroller v4.17.2 keeps it, through the driver on real API servers: a new request
// synced twice with no early requeue, the delayed requeue of a failing answer that still fires
// after the Ready sync, the periodic resync that reaches parents under ignoreStatusChanges only from
// v4.17.2 on, and a controller started before its hook-token Secret exists.
import { CoreV1Api } from '@kubernetes/client-node';
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { condition } from '../../harness/kube-helpers.js';
import { shippedControllerPath } from '../../harness/metacontroller/controller-spec.js';
import { MetacontrollerDriver } from '../../harness/metacontroller/driver.js';
import { controlPlaneStartTimeoutMs, hookTokenSecretName, serviceNetwork, WebhookEnv } from '../../harness/webhook-env.js';
import { signal } from '../../harness/signal.js';

describe('the driver keeps Metacontroller\'s time: delayed requeues, the periodic resync, a late Secret (real API servers)', function () {
  let env: WebhookEnv;
  let counter = 0;
  const fresh = () => `mct-${++counter}`;
  const spec = (name: string) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: 'dpu-cplane-tenant1' }, type: 'kubeconfig',
    secret: { name: `${name}-cred` },
  });
  const now = () => env.clock.now().getTime();
  const syncCalls = (driver: MetacontrollerDriver) => driver.calls.filter((call) => call.hook === 'sync').length;
  const callsSince = (driver: MetacontrollerDriver, start: Record<string, number>) =>
    Object.fromEntries(Object.entries(driver.api.calls).map(([verb, count]) => [verb, count - (start[verb] ?? 0)]).filter(([, count]) => count));
  const targetCore = () => env.target.adminKubeConfig().makeApiClient(CoreV1Api);
  const serviceAccountUid = async (name: string) =>
    (await targetCore().readNamespacedServiceAccount({ namespace: 'default', name }).catch(() => undefined))?.metadata?.uid;

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

  it('syncs a new request twice and then not before its renewal: the Pending answer asks for no early requeue', async function () {
    const name = fresh();
    const key = `default/${name}`;
    await env.createRequest(name, spec(name));
    const syncsBefore = syncCalls(env.driver);
    await env.driver.reconcile('default', name);
    expect(syncCalls(env.driver) - syncsBefore).to.equal(2);
    expect(condition(await env.driver.readParent('default', name), 'Ready')).to.include({ status: 'True' });
    // A requeue cannot be withdrawn (work-queue.spec.ts): had the Pending answer asked for 5 s, it would wait here.
    expect(env.driver.queue.waitingUntil(key)! - now()).to.be.greaterThan(10 * 60_000);
    env.clock.advance(5_000);
    expect(await env.driver.runDue()).to.deep.equal([]);
    expect(syncCalls(env.driver) - syncsBefore).to.equal(2);
  });

  it('syncs a third time when a failing answer\'s 5 s requeue fires after the request turned Ready: one live read, no write', async function () {
    const name = fresh();
    const key = `default/${name}`;
    await env.createRequest(name, { ...spec(name), targetCluster: { name: 'no-such-cluster' } });
    await env.driver.reconcile('default', name);
    expect(condition(await env.driver.readParent('default', name), 'Ready')).to.include({ status: 'False', reason: 'TargetClusterNotFound' });
    await env.updateRequest(name, (request) => { (request.spec as { targetCluster: { name: string } }).targetCluster.name = 'dpu-cplane-tenant1'; });
    await env.driver.reconcile('default', name);
    expect(condition(await env.driver.readParent('default', name), 'Ready')).to.include({ status: 'True' });
    // The failing answer asked for 5 s, the Ready one for the renewal: the earlier stays.
    expect(env.driver.queue.waitingUntil(key)! - now()).to.be.within(3_000, 5_000);

    const syncsBefore = syncCalls(env.driver);
    const apiBefore = { ...env.driver.api.calls };
    env.clock.advance(5_000);
    expect(await env.driver.runDue()).to.deep.equal([key]);
    expect(syncCalls(env.driver) - syncsBefore).to.equal(1);
    expect(callsSince(env.driver, apiBefore)).to.deep.equal({ GET: 1 });
    // The third answer schedules the renewal again (the queue had dropped the Ready answer's).
    expect(env.driver.queue.waitingUntil(key)! - now()).to.be.greaterThan(10 * 60_000);
  });

  it('reaches every request at the periodic resync under ignoreStatusChanges from v4.17.2 on (v4.17.1 drops it), and so recreates a ServiceAccount deleted out of band', async function () {
    this.timeout(60_000);
    const name = fresh();
    const key = `default/${name}`;
    await env.createRequest(name, spec(name));
    await env.driver.reconcile('default', name);
    const oldUid = await serviceAccountUid(`${name}-sa`);
    expect(oldUid).to.be.a('string');

    const older = await MetacontrollerDriver.start({ host: env.hostConfig(), network: await serviceNetwork(env.securePort), now, version: 'v4.17.1' });
    try {
      await targetCore().deleteNamespacedServiceAccount({ namespace: 'default', name: `${name}-sa` });
      env.clock.advance(300_000);
      expect(await older.runDue()).to.deep.equal([]);
      // The webhook notices the deletion through its watch: poll resync after resync until the sync that follows recreates it.
      let newUid = oldUid;
      for (let tick = 1; tick <= 20 && newUid === oldUid; tick++) {
        expect(await env.driver.runDue()).to.include(key);
        newUid = await serviceAccountUid(`${name}-sa`) ?? oldUid;
        if (newUid === oldUid) env.clock.advance(300_000);
      }
      expect(newUid).to.not.equal(oldUid);
      expect(older.calls).to.deep.equal([]);
    } finally {
      older.close();
    }
  });

  it('starts a controller whose hook-token Secret does not exist yet once it exists, without a restart', async function () {
    this.timeout(60_000);
    const dir = await mkdtemp(join(tmpdir(), 'late-secret-'));
    const shippedName = await hookTokenSecretName();
    const lateName = `${shippedName}-late`;
    const controllerPath = join(dir, 'compositecontroller.yaml');
    await writeFile(controllerPath, (await readFile(shippedControllerPath, 'utf8')).replace(`name: ${shippedName},`, `name: ${lateName},`));
    const buildErrors: string[] = [];
    const retried = signal();
    const starting = MetacontrollerDriver.start({
      host: env.hostConfig(), network: await serviceNetwork(env.securePort), controllerPath, now,
      onBuildError: (error) => {
        buildErrors.push(error.message);
        if (buildErrors.length >= 2) retried.resolve();
      },
    });
    let driver: MetacontrollerDriver | undefined;
    try {
      // The build has failed, and been retried, for want of the Secret.
      await retried.promise;
      expect(buildErrors.length).to.be.at.least(2);
      expect(buildErrors[0]).to.contain(lateName);
      const namespace = env.install.certificates.namespace;
      await env.hostConfig().makeApiClient(CoreV1Api).createNamespacedSecret({
        namespace, body: { metadata: { name: lateName }, stringData: { token: env.install.hookToken } },
      });
      driver = await starting;
      const name = fresh();
      await env.createRequest(name, spec(name));
      await driver.reconcile('default', name);
      expect(driver.calls.every((call) => call.statusCode === 200)).to.equal(true);
      expect(condition(await driver.readParent('default', name), 'Ready')).to.include({ status: 'True' });
    } finally {
      driver?.close();
      await starting.catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
