// Faults against real control planes: API servers that die mid-mint, answer 500 or 429,
// or answer too slowly. Whatever happens, a Secret whose token still works is never
// dropped, and every request converges once the fault is gone.
import type { V1Secret } from '@kubernetes/client-node';
import { expect } from 'chai';
import type { Condition } from '../../server/api.js';
import { registerDpuCluster } from '../../harness/dpucluster.js';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import { condition, tokenKubeConfig, whoAmI } from '../../harness/kube-helpers.js';
import { readSecret, tokenIn } from '../../harness/secrets.js';
import { startSlowProxy, type SlowProxy } from '../../harness/slow-proxy.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';

const remoteTimeoutMs = 1_000;

describe('faults against real control planes', function () {
  let env: WebhookEnv;
  let faults: FaultProxy;
  let slow: SlowProxy;
  let counter = 0;

  const ready = async (name: string): Promise<Condition | undefined> => condition(await env.driver.readParent('default', name), 'Ready');
  const secret = async (name: string): Promise<V1Secret> => {
    const found = await readSecret(env.hostConfig(), name);
    if (!found) throw new Error(`no Secret ${name}`);
    return found;
  };
  /** A request with a working Secret, on the given DPUCluster. */
  async function workingRequest(cluster: string): Promise<string> {
    counter += 1;
    const name = `fault-${counter}`;
    await env.createRequest(name, {
      serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: cluster }, type: 'kubeconfig', secret: { name },
    });
    await env.driver.reconcile('default', name);
    expect(await worksOnTarget(name)).to.equal(`system:serviceaccount:default:${name}-sa`);
    return name;
  }
  /** Who the Secret's token is on the target API server itself (not through a proxy). */
  const worksOnTarget = async (name: string) =>
    whoAmI(tokenKubeConfig(env.target.server, env.target.pki.caCertPem, tokenIn(await secret(name))));
  /** Moves the webhook's clock past the refresh time, so the next sync must mint. */
  const dueForRefresh = () => env.clock.advance(3_600_000);
  /**
   * The renewing sync at the moved clock, then the clock back and Metacontroller's follow-up
   * syncs (with the clock moved, each new token would be due again at once).
   */
  const renewAndSettle = async (name: string) => {
    await env.driver.syncOnce('default', name);
    env.clock.reset();
    await env.driver.reconcile('default', name);
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start({ remoteTimeoutMs });
    faults = await startFaultProxy(env.target);
    slow = await startSlowProxy(env.target.apiServerPort, 0);
    await registerDpuCluster(env.hostConfig(), env.target, { name: 'behind-faults', kubeconfigYaml: faults.kubeconfigYaml() });
    await registerDpuCluster(env.hostConfig(), env.target, {
      name: 'behind-slow-link', kubeconfigYaml: env.target.adminKubeconfigYaml().replace(env.target.server, slow.url),
    });
  });

  afterEach(function () {
    faults.fault = undefined;
    slow.delayMs = 0;
    env.clock.reset();
  });

  after(async function () {
    this.timeout(60_000);
    await faults?.close();
    await slow?.close();
    await env?.stop();
  });

  it('keeps the Secret when TokenRequest answers 500, says TokenRequestFailed, and converges after', async function () {
    const name = await workingRequest('behind-faults');
    const before = await secret(name);
    faults.fault = { method: 'POST', pathPattern: /\/token$/, statusCode: 500 };
    dueForRefresh();
    const { response } = await env.driver.reconcile('default', name);
    expect(faults.injected).to.be.greaterThan(0);
    expect((await secret(name)).data).to.deep.equal(before.data);
    expect(await ready(name)).to.include({ status: 'False', reason: 'TokenRequestFailed' });
    expect(response.resyncAfterSeconds).to.be.within(5, 300);

    faults.fault = undefined;
    await renewAndSettle(name);
    expect(tokenIn(await secret(name))).to.not.equal(tokenIn(before));
    expect(await ready(name)).to.include({ status: 'True' });
  });

  it('honours Retry-After from a TokenRequest answering 429', async function () {
    const name = await workingRequest('behind-faults');
    const before = await secret(name);
    faults.fault = { method: 'POST', pathPattern: /\/token$/, statusCode: 429, retryAfterSeconds: 42 };
    dueForRefresh();
    const { response } = await env.driver.reconcile('default', name);
    expect(response.resyncAfterSeconds).to.be.at.least(42);
    expect((await secret(name)).data).to.deep.equal(before.data);
    expect(await ready(name)).to.include({ status: 'False', reason: 'TokenRequestFailed' });
  });

  it('gives up on a target slower than the remote timeout in time, keeping the Secret', async function () {
    const name = await workingRequest('behind-slow-link');
    const before = await secret(name);
    slow.delayMs = remoteTimeoutMs * 3;
    // New connections are slow; pooled ones would not be, so the client must open a new one.
    env.clusters.forget('default/behind-slow-link');
    dueForRefresh();
    const started = Date.now();
    await env.driver.reconcile('default', name);
    expect(Date.now() - started).to.be.below(10_000);
    expect((await secret(name)).data).to.deep.equal(before.data);
    expect(await ready(name)).to.include({ status: 'False', reason: 'TargetClusterUnreachable' });

    slow.delayMs = 0;
    env.clusters.forget('default/behind-slow-link');
    await renewAndSettle(name);
    expect(await ready(name)).to.include({ status: 'True' });
  });

  it('keeps the Secret when the target API server dies while the TokenRequest is in flight (TargetClusterUnreachable), and converges after its restart', async function () {
    this.timeout(120_000);
    const name = await workingRequest('behind-faults');
    const before = await secret(name);
    dueForRefresh();
    // The mint reaches the proxy and is held there: the webhook is waiting for its answer.
    const minting = faults.arrival('POST', /\/token$/, { hold: true });
    const inFlight = env.driver.syncOnce('default', name);
    const mint = await minting;
    await env.target.stopApiServer();
    mint.release();
    try {
      const { response } = await inFlight;
      expect(response.children.map((child) => child.data)).to.deep.equal([before.data]);
      expect((await secret(name)).data).to.deep.equal(before.data);
      expect(await ready(name)).to.include({ status: 'False', reason: 'TargetClusterUnreachable' });
    } finally {
      await env.target.startApiServer();
    }
    await renewAndSettle(name);
    expect(await ready(name)).to.include({ status: 'True' });
    expect(tokenIn(await secret(name))).to.not.equal(tokenIn(before));
    expect(await worksOnTarget(name)).to.equal(`system:serviceaccount:default:${name}-sa`);
  });

  it('answers from what it has while the host API server is down, and the driver resumes after', async function () {
    this.timeout(120_000);
    const name = await workingRequest('dpu-cplane-tenant1');
    await env.driver.reconcile('default', name); // its request now carries the Secret
    const before = await secret(name);
    const lastRequest = env.driver.lastHookRequest;
    await env.host.stopApiServer();
    try {
      // Metacontroller keeps calling with what its informers hold; the webhook needs the host
      // only to read the DPUCluster's kubeconfig, which it holds for a while.
      const answer = await fetch(`${env.plainUrl}/sync`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: lastRequest });
      expect(answer.status).to.equal(200);
      const body = await answer.json() as { children: V1Secret[] };
      expect(body.children.map((child) => child.data)).to.deep.equal([before.data]);
    } finally {
      await env.host.startApiServer();
    }
    await env.driver.reconcile('default', name);
    expect(await ready(name)).to.include({ status: 'True' });
  });

});
