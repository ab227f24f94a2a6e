// The transport against real API servers behind faults client-go's transport survives (issue
// 24): a server that closed the pooled connections while they sat idle, watches answering an
// ERROR event or ending at once, a proxy in the environment, a hostile DPUCluster whose
// "API server" streams an endless answer while another tenant is synced, and one whose watch
// floods the webhook's ServiceAccount cache past its cap.
import { expect } from 'chai';
import { setTimeout as delay } from 'node:timers/promises';
import { parse, stringify } from 'yaml';
import { KubeRestClient } from '../../server/kube/rest.js';
import { maxCachedServiceAccounts, ServiceAccountCache } from '../../server/kube/service-account-cache.js';
import { managedByLabel, managedByValue, requestNameLabel, requestNamespaceLabel } from '../../server/credential/names.js';
import { createLogger } from '../../server/log.js';
import { registerDpuCluster } from '../../harness/dpucluster.js';
import { startConnectProxy, type ConnectProxy } from '../../harness/connect-proxy.js';
import { startEndlessTarget, type EndlessTarget } from '../../harness/endless-target.js';
import { eventually } from '../../harness/eventually.js';
import { startFaultProxy, type FaultProxy } from '../../harness/fault-proxy.js';
import { condition, tokenKubeConfig, whoAmI } from '../../harness/kube-helpers.js';
import { readSecret, tokenIn } from '../../harness/secrets.js';
import { controlPlaneStartTimeoutMs, WebhookEnv } from '../../harness/webhook-env.js';

interface KubeconfigDocument {
  clusters: { cluster: Record<string, unknown> }[];
}

/** The target's admin kubeconfig, pointed at `server` (trusting `caPem`, checking the certificate against `tlsServerName`). */
function kubeconfigAt(adminYaml: string, server: string, options: { caPem?: string; tlsServerName?: string } = {}): string {
  const document = parse(adminYaml) as KubeconfigDocument;
  const cluster = document.clusters[0]!.cluster;
  cluster.server = server;
  if (options.caPem) cluster['certificate-authority-data'] = Buffer.from(options.caPem).toString('base64');
  if (options.tlsServerName) cluster['tls-server-name'] = options.tlsServerName;
  return stringify(document);
}

describe('the transport against real API servers behind faults (issue 24)', function () {
  let env: WebhookEnv;
  let faults: FaultProxy;
  let counter = 0;
  /** The webhook's warnings (a cache that stops says so). */
  const warnings: string[] = [];
  const spec = (name: string, cluster: string) => ({
    serviceAccount: { name: `${name}-sa` }, duration: '1h', targetCluster: { name: cluster }, type: 'kubeconfig', secret: { name },
  });
  /** Who the Secret's token is on the target API server itself (not through a proxy). */
  const worksOnTarget = async (name: string) => {
    const secret = await readSecret(env.hostConfig(), name);
    if (!secret) throw new Error(`no Secret ${name}`);
    return whoAmI(tokenKubeConfig(env.target.server, env.target.pki.caCertPem, tokenIn(secret)));
  };

  before(async function () {
    this.timeout(controlPlaneStartTimeoutMs);
    env = await WebhookEnv.start({ remoteTimeoutMs: 3_000, log: createLogger('warn', (line) => warnings.push(line)) });
    faults = await startFaultProxy(env.target);
    await registerDpuCluster(env.hostConfig(), env.target, { name: 'behind-faults', kubeconfigYaml: faults.kubeconfigYaml() });
  });

  afterEach(function () {
    faults.closeIdleAfterMs = undefined;
    faults.watchFault = undefined;
  });

  after(async function () {
    this.timeout(60_000);
    await faults?.close();
    await env?.stop();
  });

  it('finalizes at the first attempt after the server closed the pooled connections while they sat idle', async function () {
    const name = `idle-${++counter}`;
    await env.createRequest(name, spec(name, 'behind-faults'));
    await env.driver.reconcile('default', name);
    expect(await worksOnTarget(name)).to.equal(`system:serviceaccount:default:${name}-sa`);

    // From now on a connection idle for 300 ms is gone when it is next used.
    faults.closeIdleAfterMs = 300;
    await delay(500);
    await env.deleteRequest(name);
    // One finalize call: a failed one would be called again, on connections opened afresh.
    const { hook, response } = await env.driver.syncOnce('default', name);
    expect(faults.idleClosed, 'the fault happened').to.be.greaterThan(0);
    expect(hook).to.equal('finalize');
    expect(response, JSON.stringify(response.status)).to.include({ finalized: true });
  });

  for (const watchFault of ['error', 'empty'] as const) {
    const what = watchFault === 'error' ? 'answers the watch with an ERROR event (500)' : 'ends every watch at once without an event';
    it(`lists again after a backoff, without a hot loop, while the server ${what}, and catches up after`, async function () {
      this.timeout(60_000);
      const client = new KubeRestClient({ server: faults.url, caPem: faults.caPem }, { timeoutMs: 5_000 });
      const calls = () => faults.requests.filter((call) => call.path.startsWith('/api/v1/serviceaccounts?'));
      const watches = () => calls().filter((call) => /[?&]watch=true/.test(call.path)).length;
      const lists = () => calls().filter((call) => !/[?&]watch=true/.test(call.path)).length;
      const before = { watches: watches(), lists: lists() };
      faults.watchFault = watchFault;
      const cache = new ServiceAccountCache(client);
      try {
        await delay(4_000);
        const seen = { watches: watches() - before.watches, lists: lists() - before.lists };
        console.log(`      ${watchFault}: ${seen.watches} watches and ${seen.lists} lists in 4 s`);
        // client-go's backoff (0.8 s doubling, with jitter) allows at most 4 failed watches in 4 s.
        expect(seen.watches, 'watches in 4 s').to.be.within(1, 5);
        expect(seen.lists, 'each failed watch is followed by a list').to.be.at.least(seen.watches);

        faults.watchFault = undefined;
        const name = `after-${watchFault}-${++counter}`;
        await client.request('POST', '/api/v1/namespaces/default/serviceaccounts', {
          metadata: { name, labels: { [managedByLabel]: managedByValue } },
        });
        await eventually(() => cache.lookup('default', name), `the cache sees ${name}`, { timeoutMs: 30_000 });
      } finally {
        cache.close();
        client.close();
      }
    });
  }

  it('stops a target\'s ServiceAccount cache that its API server floods past the cap, and syncs on that target go on by live reads', async function () {
    this.timeout(120_000);
    await registerDpuCluster(env.hostConfig(), env.target, { name: 'flooding', kubeconfigYaml: faults.kubeconfigYaml() });
    // Made-up managed ServiceAccounts with 1 kB of labels each, one more than the cap (12 MB, within what one
    // watch may bring from a target, 16 MiB: past that the watch ends and the cache lists again after a backoff).
    faults.floodObjects = maxCachedServiceAccounts + 1;
    faults.floodLabels = { [managedByLabel]: managedByValue, [requestNameLabel]: 'flood', [requestNamespaceLabel]: 'default', blob: 'b'.repeat(1_000) };
    faults.watchFault = 'flood';
    const first = `flooded-${++counter}`;
    await env.createRequest(first, spec(first, 'flooding'));
    await env.driver.reconcile('default', first);
    expect(await worksOnTarget(first)).to.equal(`system:serviceaccount:default:${first}-sa`);

    const dpuCluster = await env.clusters.host.readDpuCluster('default', 'flooding');
    const cache = (await env.clusters.forDpuCluster(dpuCluster!)).serviceAccounts;
    expect(cache, 'the first sync started the cache').to.not.equal(undefined);
    await eventually(() => cache!.stoppedBy, 'the flooded cache stops', { timeoutMs: 60_000 });
    expect(cache!.stoppedBy?.name).to.equal('CacheOverflowError');
    expect(cache!.size, 'it holds nothing once stopped').to.equal(0);
    const stopped = warnings.filter((line) => line.includes('watch cache stopped'));
    expect(stopped).to.have.length(1);
    expect(stopped[0]).to.include('overflow').and.not.include('flood-').and.not.include('bbbb');

    // Another request on that target: its ServiceAccount is read from the API (the cache cannot tell), made, and works.
    const second = `flooded-${++counter}`;
    const readsBefore = faults.requests.length;
    await env.createRequest(second, spec(second, 'flooding'));
    await env.driver.reconcile('default', second);
    expect(await worksOnTarget(second)).to.equal(`system:serviceaccount:default:${second}-sa`);
    const liveReads = faults.requests.slice(readsBefore).filter((call) => call.method === 'GET' && call.path.startsWith(`/api/v1/namespaces/default/serviceaccounts/${second}-sa`));
    expect(liveReads, 'a live GET of the ServiceAccount').to.have.length.at.least(1);
  });

  describe('with HTTPS_PROXY in the environment', function () {
    let proxy: ConnectProxy;
    const saved = { HTTPS_PROXY: process.env.HTTPS_PROXY, NO_PROXY: process.env.NO_PROXY };

    before(async function () {
      // A name only the proxy resolves: without the proxy, the target cannot be reached at all.
      proxy = await startConnectProxy({ hosts: { 'kube.proxied.test': '127.0.0.1' } });
      process.env.HTTPS_PROXY = proxy.url;
      delete process.env.NO_PROXY;
    });

    after(async function () {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      await proxy?.close();
    });

    it('reaches a DPUCluster through the proxy, and the host (loopback) directly', async function () {
      const server = `https://kube.proxied.test:${env.target.apiServerPort}`;
      await registerDpuCluster(env.hostConfig(), env.target, {
        name: 'behind-https-proxy', kubeconfigYaml: kubeconfigAt(env.target.adminKubeconfigYaml(), server, { tlsServerName: 'localhost' }),
      });
      const name = `proxied-${++counter}`;
      await env.createRequest(name, spec(name, 'behind-https-proxy'));
      await env.driver.reconcile('default', name);
      const ready = condition(await env.driver.readParent('default', name), 'Ready');
      expect(ready?.status, ready?.message).to.equal('True');
      expect(await worksOnTarget(name)).to.equal(`system:serviceaccount:default:${name}-sa`);
      expect(proxy.tunnels).to.include(`kube.proxied.test:${env.target.apiServerPort}`);
      expect(proxy.tunnels.filter((tunnel) => tunnel.startsWith('127.0.0.1')), 'loopback is never proxied').to.deep.equal([]);
    });
  });

  describe('a DPUCluster whose API server streams an endless answer (64 MB/s)', function () {
    let endless: EndlessTarget;

    before(async function () {
      this.timeout(60_000);
      endless = await startEndlessTarget(64 * 1024 * 1024);
      await registerDpuCluster(env.hostConfig(), env.target, {
        name: 'endless', kubeconfigYaml: kubeconfigAt(env.target.adminKubeconfigYaml(), endless.server, { caPem: endless.caPem }),
      });
    });

    after(async function () {
      await endless?.stop();
    });

    it('does not grow the heap nor stall the event loop, and another tenant\'s syncs complete meanwhile', async function () {
      this.timeout(60_000);
      const hostile = `hostile-${++counter}`;
      await env.createRequest(hostile, spec(hostile, 'endless'));
      // The other tenant's cluster is warm, as it would be: one request there synced already.
      const warm = `tenant-${++counter}`;
      await env.createRequest(warm, spec(warm, env.dpuCluster.name));
      await env.driver.reconcile('default', warm);

      // Retained memory, after a full collection (what is reachable, not garbage awaiting one), every 250 ms.
      const retained = () => {
        global.gc?.();
        const { heapUsed, arrayBuffers } = process.memoryUsage();
        return heapUsed + arrayBuffers;
      };
      const baseline = retained();
      let peak = baseline;
      // Event-loop delay: how late a 10 ms timer fires, leaving out the tick after each collection
      // forced here (the measurement's own pause, not the webhook's).
      const lagsMs: number[] = [];
      let collected = false;
      let expectedAt = performance.now() + 10;
      const probe = setInterval(() => {
        const now = performance.now();
        if (!collected) lagsMs.push(Math.max(0, now - expectedAt));
        collected = false;
        expectedAt = now + 10;
      }, 10);
      const sampler = setInterval(() => {
        peak = Math.max(peak, retained());
        collected = true;
      }, 250);
      const runForMs = 6_000;
      const endsAt = Date.now() + runForMs;
      let hostileSyncs = 0;
      const hostileLoop = (async () => {
        while (Date.now() < endsAt) {
          await env.driver.syncOnce('default', hostile);
          hostileSyncs += 1;
        }
      })();
      const latenciesMs: number[] = [];
      const tenantSecrets: number[] = [];
      while (Date.now() < endsAt) {
        const name = `tenant-${++counter}`;
        await env.createRequest(name, spec(name, env.dpuCluster.name));
        const started = performance.now();
        const { response } = await env.driver.syncOnce('default', name);
        latenciesMs.push(performance.now() - started);
        tenantSecrets.push(response.children.length);
      }
      await hostileLoop;
      clearInterval(probe);
      clearInterval(sampler);
      peak = Math.max(peak, retained());

      const growthMb = (peak - baseline) / 1e6;
      const hostileReady = condition(await env.driver.readParent('default', hostile), 'Ready');
      lagsMs.sort((a, b) => a - b);
      const lagMs = (fraction: number) => lagsMs[Math.min(lagsMs.length - 1, Math.floor(lagsMs.length * fraction))]!;
      console.log(`      event-loop delay p50 ${lagMs(0.5).toFixed(1)} ms, p99 ${lagMs(0.99).toFixed(1)} ms, `
        + `max ${lagMs(1).toFixed(1)} ms; heap and buffers peak +${growthMb.toFixed(1)} MB; ${hostileSyncs} hostile syncs; `
        + `tenant syncs ${latenciesMs.map((ms) => ms.toFixed(0)).join(', ')} ms; hostile: ${hostileReady?.reason}: ${hostileReady?.message}`);
      expect(growthMb, 'heap and buffers growth (MB)').to.be.below(64);
      expect(lagMs(0.99), 'p99 event-loop delay (ms)').to.be.below(200);
      expect(latenciesMs.length, 'tenant syncs completed').to.be.at.least(2);
      expect(tenantSecrets.every((children) => children === 1), 'each tenant sync returned its Secret').to.equal(true);
      // Generous: the machine running the suite may be busy; a stalled webhook would exceed it.
      expect(Math.max(...latenciesMs), 'slowest tenant sync (ms)').to.be.below(10_000);
      expect(hostileReady?.status).to.equal('False');
    });
  });
});
