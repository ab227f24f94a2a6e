// The steps a scale run is made of (Scale: create requests, the yardstick, the webhook path, the
// storm, the wave) and what they run against (ScaleContext, Metacontroller's client settings). Their
// own module: scale.ts runs them in order and fanout.ts uses them, and neither imports the other.
import type { KubeConfig, V1Secret } from '@kubernetes/client-node';
import autocannon from 'autocannon';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DpuServiceCredentialRequestStatus } from '../server/api.js';
import { KubeRestClient } from '../server/kube/rest.js';
import { connectionOf } from '../harness/connection.js';
import type { ControlPlane } from '../harness/control-plane.js';
import { metacontrollerDefaults, type ClientGoLimits } from '../harness/metacontroller/client-go.js';
import { MetacontrollerDriver, type ClusterNetwork } from '../harness/metacontroller/driver.js';
import { authenticatesAs } from '../harness/secrets.js';
import type { WebhookInstall } from '../harness/webhook-install.js';
import type { WebhookProcess } from '../harness/webhook-process.js';
import { cpuMs, metricSum } from './setup.js';

export interface ScaleContext {
  host: ControlPlane;
  target: ControlPlane;
  hostConfig: KubeConfig;
  install: WebhookInstall;
  webhook: WebhookProcess;
  network: ClusterNetwork;
  log: (text: string) => void;
}

interface MetacontrollerSettings extends ClientGoLimits {
  workers: number;
}

/** What docs/performance.md recommends for fleets (flags --client-go-qps, --client-go-burst, --workers). */
export const recommendedSettings: MetacontrollerSettings = { qps: 100, burst: 200, workers: 16 };
export const highSettings: MetacontrollerSettings = { qps: 500, burst: 1000, workers: 16 };
export const shippedSettings: MetacontrollerSettings = { ...metacontrollerDefaults };
/** The budget DPF's own controller was measured at (controller-runtime's defaults): the side-by-side comparison. */
export const dpfBudgetSettings: MetacontrollerSettings = { qps: 20, burst: 30, workers: 5 };

const namespace = 'default';
const requestsPath = `/apis/svc.dpu.nvidia.com/v1alpha1/namespaces/${namespace}/dpuservicecredentialrequests`;

const names = (prefix: string, count: number) => Array.from({ length: count }, (_, index) => `${prefix}-${index}`);

/** Runs `work` on every item with `workers` at a time, as a controller's worker pool does. */
async function pool<T>(items: T[], workers: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

/** Where the CPU goes: each process of the run, CPU ms per request over one phase. */
type CpuByProcess = Record<'hostApiServer' | 'hostEtcd' | 'targetApiServer' | 'targetEtcd' | 'webhook' | 'benchProcess', number>;

/**
 * Every process on the 2 cores, read before and after a phase. The bench process holds the
 * yardstick's client in the yardstick, and the driver (Metacontroller's stand-in: its client,
 * informers and hook calls) in the webhook path.
 */
async function cpuSnapshot({ host, target, webhook }: ScaleContext): Promise<CpuByProcess> {
  const ms = (pid: number | undefined) => (pid === undefined ? Promise.resolve(Number.NaN) : cpuMs(pid));
  const own = process.cpuUsage();
  return {
    hostApiServer: await ms(host.processIds.apiServer), hostEtcd: await ms(host.processIds.etcd),
    targetApiServer: await ms(target.processIds.apiServer), targetEtcd: await ms(target.processIds.etcd),
    webhook: await ms(webhook.pid), benchProcess: (own.user + own.system) / 1_000,
  };
}

/** CPU ms per request of every process over `phase`, and their total. */
async function cpuPerRequest(context: ScaleContext, requests: number, phase: () => Promise<void>): Promise<CpuByProcess & { total: number }> {
  const before = await cpuSnapshot(context);
  await phase();
  const after = await cpuSnapshot(context);
  const round = (ms: number) => Math.round(ms * 100) / 100;
  const perRequest = Object.fromEntries(Object.entries(after).map(([key, ms]) =>
    [key, round((ms - before[key as keyof CpuByProcess]) / requests)])) as CpuByProcess;
  return { ...perRequest, total: round(Object.values(perRequest).reduce((sum, ms) => sum + ms, 0)) };
}

export class Scale {
  private readonly hostApi: KubeRestClient;
  private readonly targetApi: KubeRestClient;

  constructor(private readonly context: ScaleContext) {
    this.hostApi = new KubeRestClient(connectionOf(context.hostConfig), { timeoutMs: 60_000, maxSockets: 64 });
    this.targetApi = new KubeRestClient(connectionOf(context.target.adminKubeConfig()), { timeoutMs: 60_000, maxSockets: 64 });
  }

  /** One scrape; note that a scrape also resets the event-loop delay histogram behind nodejs_eventloop_lag_*. */
  async scrape(): Promise<string> {
    return await (await fetch(this.context.webhook.metricsUrl)).text();
  }

  async metric(name: string, text?: string): Promise<number> {
    return metricSum(text ?? await this.scrape(), name);
  }

  webhookApiCalls = (text?: string) => this.metric('dpu_credential_kube_requests_total', text);

  /** Parents made before any clock starts: both paths begin from requests that exist. */
  async createRequests(prefix: string, count: number, duration: string, targetCluster = 'dpu-cplane-tenant1'): Promise<string[]> {
    const host = this.hostApi;
    const all = names(prefix, count);
    await pool(all, 32, async (name) => {
      await host.request('POST', requestsPath, {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name },
        spec: { serviceAccount: { name: `${name}-sa` }, duration, targetCluster: { name: targetCluster }, type: 'kubeconfig', secret: { name } },
      });
    });
    return all;
  }

  /**
   * The yardstick: what the webhook path achieves, written directly: create the ServiceAccount
   * and request its token in the target, write the Secret and the status in the host.
   */
  async rawPath(all: string[], workers: number) {
    const [host, target] = [this.hostApi, this.targetApi];
    const started = performance.now();
    const cpuMsPerRequest = await cpuPerRequest(this.context, all.length, () => pool(all, workers, async (name) => {
      await target.request('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name: `${name}-sa` } });
      const minted = await target.request<{ status: { token: string; expirationTimestamp: string } }>('POST',
        `/api/v1/namespaces/${namespace}/serviceaccounts/${name}-sa/token`, { spec: { expirationSeconds: 3600 } });
      await host.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
        metadata: { name }, type: 'Opaque', data: { token: Buffer.from(minted.status.token).toString('base64') },
      });
      await host.request('PATCH', `${requestsPath}/${name}/status`, {
        status: {
          observedGeneration: 1, expirationTimestamp: minted.status.expirationTimestamp,
          conditions: [{ type: 'Ready', status: 'True', reason: 'Success', message: 'raw', lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }],
        },
      }, { contentType: 'application/merge-patch+json' });
    }));
    return { seconds: (performance.now() - started) / 1_000, cpuMsPerRequest };
  }

  /** The webhook path: the driver with Metacontroller's settings reconciles every request until it rests. */
  async webhookPath(driver: MetacontrollerDriver, all: string[], workers: number) {
    // Metacontroller syncs a parent when its informer brings it; so does the driver.
    for (const name of all) {
      while (!await driver.parents.get(namespace, name)) await sleep(20);
    }
    const syncs = new Map<string, { status: DpuServiceCredentialRequestStatus; resyncAfterSeconds: number; doneAt: number }>();
    const [webhookCallsBefore, metacontrollerCallsBefore, hookCallsBefore] = [await this.webhookApiCalls(), driver.api.total, driver.calls.length];
    const started = performance.now();
    const cpuMsPerRequest = await cpuPerRequest(this.context, all.length, () => pool(all, workers, async (name) => {
      const { response } = await driver.reconcile(namespace, name);
      syncs.set(name, { status: response.status as DpuServiceCredentialRequestStatus, resyncAfterSeconds: response.resyncAfterSeconds, doneAt: Date.now() });
    }));
    const seconds = (performance.now() - started) / 1_000;
    const notReady = [...syncs.values()].filter(({ status }) => status.conditions?.find((c) => c.type === 'Ready')?.status !== 'True').length;
    if (notReady > 0) throw new Error(`${notReady} of ${all.length} requests are not Ready`);
    await this.checkSecrets(all);
    return {
      seconds, syncs, cpuMsPerRequest,
      webhookApiCallsPerRequest: (await this.webhookApiCalls() - webhookCallsBefore) / all.length,
      metacontrollerApiCallsPerRequest: (driver.api.total - metacontrollerCallsBefore) / all.length,
      hookCallsPerRequest: (driver.calls.length - hookCallsBefore) / all.length,
    };
  }

  /** Every request's Secret exists and holds a token; a sample of them authenticates as its ServiceAccount in the target. */
  async checkSecrets(all: string[]): Promise<void> {
    const host = this.hostApi;
    const secrets = new Map<string, V1Secret>();
    let next: string | undefined;
    do {
      const page = await host.request<{ items: V1Secret[]; metadata: { continue?: string } }>('GET',
        `/api/v1/namespaces/${namespace}/secrets?limit=1000${next ? `&continue=${encodeURIComponent(next)}` : ''}`);
      for (const secret of page.items) secrets.set(secret.metadata!.name!, secret);
      next = page.metadata.continue;
    } while (next);
    const missing = all.filter((name) => !secrets.get(name)?.data?.kubeconfig);
    if (missing.length > 0) throw new Error(`${missing.length} Secrets missing or without a kubeconfig, e.g. ${missing[0]}`);
    const step = Math.max(1, Math.floor(all.length / 20));
    for (let index = 0; index < all.length; index += step) {
      const who = await authenticatesAs(secrets.get(all[index]!)!);
      if (who !== `system:serviceaccount:${namespace}:${all[index]}-sa`) throw new Error(`${all[index]} authenticates as ${who}`);
    }
  }

  /** `now`: the driver's clock (default Date.now); the fan-out phase moves it past the customize cache's expiry. */
  /** `controllerPath`: another CompositeController than the shipped one (fanout.ts compares the 0.3.x one, with customize). */
  driver(settings: ClientGoLimits, now?: () => number, controllerPath?: string): Promise<MetacontrollerDriver> {
    return MetacontrollerDriver.start({
      host: this.context.hostConfig, network: this.context.network, clientGo: settings, informers: 'watch', ...(now ? { now } : {}),
      ...(controllerPath ? { controllerPath } : {}),
    });
  }

  /**
   * Metacontroller restarted: every parent's sync arrives at once (bodies built by the driver
   * from its caches, each parent's own), through autocannon on `connections` connections:
   * Metacontroller's workers (each sends one sync at a time), or more as a stress. /healthz is
   * probed every 100 ms throughout, on a new connection each time, as a kubelet does.
   */
  async storm(driver: MetacontrollerDriver, all: string[], connections: number) {
    const bodies: string[] = [];
    await pool(all, 16, async (name) => {
      const body = await driver.syncRequestBody(namespace, name);
      if (body) bodies.push(body);
    });
    const { install, webhook } = this.context;
    const callsBefore = await this.webhookApiCalls(); // this scrape also resets the lag histogram
    let probing = true;
    const probeMs: number[] = [];
    const probes = (async () => {
      while (probing) {
        const started = performance.now();
        await install.call(webhook.port, '/healthz');
        probeMs.push(performance.now() - started);
        await sleep(100);
      }
    })();
    let next = 0;
    const result = await autocannon({
      url: `https://127.0.0.1:${webhook.port}`, connections, amount: bodies.length,
      servername: install.serviceHost, tlsOptions: { ca: install.pki.caCertPem },
      requests: [{
        method: 'POST', path: '/sync',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${install.hookToken}` },
        setupRequest: (request) => ({ ...request, body: bodies[next++ % bodies.length] }),
      }],
    });
    probing = false;
    await probes;
    const after = await this.scrape();
    return {
      syncs: result.requests.total,
      connections,
      seconds: result.duration,
      syncsPerSecond: result.requests.total / result.duration,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      maxMs: result.latency.max,
      errors: result.errors + result.non2xx + result.timeouts,
      apiCalls: await this.webhookApiCalls(after) - callsBefore,
      maxEventLoopDelayMs: (await this.metric('nodejs_eventloop_lag_max_seconds', after)) * 1_000,
      slowestHealthProbeMs: Math.max(...probeMs),
    };
  }

  /**
   * The renewal wave: each request synced again when its resyncAfterSeconds falls due, as
   * Metacontroller's delaying queue does, by the same workers. Reports from the first to the
   * last renewal and the least lifetime any replaced token still had.
   */
  async wave(driver: MetacontrollerDriver, syncs: Map<string, { status: DpuServiceCredentialRequestStatus; resyncAfterSeconds: number; doneAt: number }>, workers: number) {
    const due = [...syncs.entries()].map(([name, sync]) => ({
      name, dueAt: sync.doneAt + sync.resyncAfterSeconds * 1_000,
      issuedAt: sync.status.issuedAt, expiresAt: Date.parse(sync.status.expirationTimestamp ?? ''),
    })).sort((a, b) => a.dueAt - b.dueAt);
    const [webhookCallsBefore, metacontrollerCallsBefore, errorsBefore] = [await this.webhookApiCalls(), driver.api.total, driver.syncErrors.length];
    const firstDue = due[0]!.dueAt;
    this.context.log(`wave: ${due.length} renewals due from ${new Date(firstDue).toISOString()} over ${((due.at(-1)!.dueAt - firstDue) / 1_000).toFixed(0)} s`);
    const renewedAt: number[] = [];
    let leastLifetimeLeftSeconds = Infinity;
    let notRenewed = 0;
    let failed = 0;
    await pool(due, workers, async (item) => {
      const wait = item.dueAt - Date.now();
      if (wait > 0) await sleep(wait);
      try {
        const { response } = await driver.reconcile(namespace, item.name);
        const status = response.status as DpuServiceCredentialRequestStatus;
        const now = Date.now();
        if (status.issuedAt === item.issuedAt) {
          notRenewed++;
          return;
        }
        renewedAt.push(now);
        leastLifetimeLeftSeconds = Math.min(leastLifetimeLeftSeconds, (item.expiresAt - now) / 1_000);
      } catch {
        failed++;
      }
    });
    return {
      renewals: renewedAt.length,
      seconds: (Math.max(...renewedAt) - Math.min(...renewedAt)) / 1_000,
      secondsFromFirstDue: (Math.max(...renewedAt) - firstDue) / 1_000,
      webhookApiCallsPerRenewal: (await this.webhookApiCalls() - webhookCallsBefore) / due.length,
      metacontrollerApiCallsPerRenewal: (driver.api.total - metacontrollerCallsBefore) / due.length,
      errors: failed + driver.syncErrors.length - errorsBefore,
      notRenewed,
      leastLifetimeLeftSeconds,
    };
  }

  close(): void {
    this.hostApi.close();
    this.targetApi.close();
  }
}
