// A whole environment for end-to-end tests: a host and a target control plane, the
// CRDs, the target registered as DPUCluster default/dpu-cplane-tenant1, the webhook
// installed as the README says (HTTPS with the shipped certificate layout, the hook
// token) and served on loopback with a clock the test can move, and the Metacontroller
// driver reading the shipped CompositeController. A second, plain-HTTP listener of the
// same webhook, without hook authentication (what ALLOW_INSECURE_HOOKS=true allows a
// process), serves calls by hand and the load test only.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import type { Policy } from '../../server/credential/policy.js';
import type { HookContext } from '../../server/hooks/context.js';
import { createApp, createMetricsApp } from '../../server/app.js';
import { HookTokens } from '../../server/http/bearer-auth.js';
import { HostCluster, TargetClusters } from '../../server/kube/clusters.js';
import { EventRecorder } from '../../server/kube/events.js';
import { createLogger, silentLogger, type Logger } from '../../server/log.js';
import { Metrics } from '../../server/metrics.js';
import { startServer, type RunningServer } from '../../server/server.js';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from './control-plane.js';
import { installDpuClusterCrd, registerDpuCluster, type DpuClusterRef } from './dpucluster.js';
import { createObjects, readManifests } from './kube-helpers.js';
import { MetacontrollerDriver } from './metacontroller/driver.js';
import { readCompositeController } from './metacontroller/controller-spec.js';
import { WebhookInstall } from './webhook-install.js';
import { connectionOf } from './connection.js';

export const parentApi = { group: 'svc.dpu.nvidia.com', version: 'v1alpha1', plural: 'dpuservicecredentialrequests' } as const;

export const requestCrdPath = fileURLToPath(new URL('../../deploy/crd/svc.dpu.nvidia.com_dpuservicecredentialrequests.yaml', import.meta.url));
export const controlPlaneStartTimeoutMs = 20 * 60_000;

/** Real time plus an offset the test moves forward. */
export class TestClock {
  private offsetMs = 0;
  now = (): Date => new Date(Date.now() + this.offsetMs);
  advance(ms: number): void {
    this.offsetMs += ms;
  }
  reset(): void {
    this.offsetMs = 0;
  }
}

export interface WebhookEnvOptions {
  target?: ControlPlaneOptions;
  remoteTimeoutMs?: number;
  log?: Logger;
}

/** Where the driver finds the webhook: the Service named in the CompositeController, forwarded to the loopback port. */
export async function serviceNetwork(port: number) {
  const controller = await readCompositeController();
  const service = controller.spec.hooks.sync!.webhook.service!;
  return { [`${service.name}.${service.namespace}:${service.port ?? 80}`]: { host: '127.0.0.1', port } };
}

/** The hook-token Secret the shipped CompositeController points Metacontroller at. */
export async function hookTokenSecretName(): Promise<string> {
  const controller = await readCompositeController();
  const name = controller.spec.endpointConfigs?.[0]?.authorization?.secretRef.name;
  if (!name) throw new Error('the CompositeController names no hook-token Secret');
  return name;
}

export class WebhookEnv {
  private constructor(
    readonly clock: TestClock,
    readonly metrics: Metrics,
    readonly host: ControlPlane,
    readonly target: ControlPlane,
    readonly dpuCluster: DpuClusterRef,
    readonly clusters: TargetClusters,
    readonly install: WebhookInstall,
    private readonly hookTokens: HookTokens,
    private readonly secure: RunningServer,
    private readonly plain: Server,
    private readonly metricsServer: RunningServer,
    public driver: MetacontrollerDriver,
    private readonly dir: string,
    private readonly context: HookContext,
  ) {}

  /** The webhook restarted with other request limits (MAX_TOKEN_DURATION, …); undefined: the defaults. */
  usePolicy(policy: Policy | undefined): void {
    if (policy) this.context.policy = policy;
    else delete this.context.policy;
  }

  static async start(options: WebhookEnvOptions = {}): Promise<WebhookEnv> {
    const [host, target] = await Promise.all([
      startControlPlane({ name: 'host' }),
      startControlPlane({ name: 'target', ...options.target }),
    ]);
    const hostConfig = host.adminKubeConfig();
    await createObjects(hostConfig, await readManifests(requestCrdPath));
    await installDpuClusterCrd(hostConfig);
    const dpuCluster = await registerDpuCluster(hostConfig, target, { name: 'dpu-cplane-tenant1' });

    const metrics = new Metrics();
    const clusterOptions = { timeoutMs: options.remoteTimeoutMs ?? 3_000, observeApiCall: metrics.observeApiCall };
    const clusters = new TargetClusters(await HostCluster.fromConfig(connectionOf(hostConfig), clusterOptions), clusterOptions);
    const clock = new TestClock();
    const log = options.log ?? (process.env.WEBHOOK_TEST_LOGS ? createLogger('debug') : silentLogger);
    const context: HookContext = { clusters, now: clock.now, log };
    const appOptions = { maxBodyBytes: 1024 * 1024, metrics, hostClusterReachable: () => clusters.host.checkReachable() };

    const dir = await mkdtemp(join(tmpdir(), 'webhook-env-'));
    const install = await WebhookInstall.create(hostConfig, dir, { hookTokenSecretName: await hookTokenSecretName() });
    const hookTokens = new HookTokens(install.tokenFile, 50);
    const events = new EventRecorder(clusters.host.client, log);
    const secure = await startServer(createApp(context, { ...appOptions, hookTokens, events }), {
      port: 0, host: '127.0.0.1', shutdownTimeoutMs: 1_000, log,
      tls: { certFile: install.tlsVolume.path('tls.crt'), keyFile: install.tlsVolume.path('tls.key'), pollIntervalMs: 50 },
    });
    // Without TLS and without the hook token: the process would refuse this unless
    // ALLOW_INSECURE_HOOKS=true (server/config.ts). Built from the app directly, loopback only.
    const plain = await new Promise<Server>((resolve) => {
      const listening = createApp(context, appOptions).listen(0, '127.0.0.1', () => resolve(listening));
    });
    const metricsServer = await startServer(createMetricsApp(metrics), { port: 0, host: '127.0.0.1', shutdownTimeoutMs: 1_000, log });
    // One clock for the webhook and Metacontroller's timers: moving it makes requeues and the periodic resync due.
    const driver = await MetacontrollerDriver.start({
      host: hostConfig, network: await serviceNetwork(secure.port), now: () => clock.now().getTime(),
    });
    return new WebhookEnv(clock, metrics, host, target, dpuCluster, clusters, install, hookTokens, secure, plain, metricsServer, driver, dir, context);
  }

  /** The secure listener's loopback port (what the Service forwards to). */
  get securePort(): number {
    return this.secure.port;
  }

  /** Plain HTTP, without the hook token: for the curl examples and the load test only. */
  get plainUrl(): string {
    return `http://127.0.0.1:${(this.plain.address() as AddressInfo).port}`;
  }

  /** /metrics, on its own plain-HTTP port as METRICS_PORT serves it. */
  get metricsUrl(): string {
    return `http://127.0.0.1:${this.metricsServer.port}/metrics`;
  }

  /**
   * The renewal `afterSeconds` from now: one sync at the webhook's clock moved that far
   * (every token minted then would be due again at once), then the clock back and
   * Metacontroller's follow-up syncs.
   */
  async renewAfter(namespace: string, name: string, afterSeconds: number): Promise<void> {
    this.clock.advance(afterSeconds * 1_000);
    try {
      await this.driver.syncOnce(namespace, name);
    } finally {
      this.clock.reset();
    }
    await this.driver.reconcile(namespace, name);
  }

  /** Metacontroller restarted: the driver reads the CompositeController and its Secrets again. */
  async restartMetacontroller(): Promise<MetacontrollerDriver> {
    this.driver = await this.driver.restart();
    return this.driver;
  }

  hostConfig(): KubeConfig {
    return this.host.adminKubeConfig();
  }

  async createRequest(name: string, spec: Record<string, unknown>, options: { namespace?: string; annotations?: Record<string, string> } = {}): Promise<DpuServiceCredentialRequest> {
    const namespace = options.namespace ?? 'default';
    return await this.hostConfig().makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      ...parentApi,
      namespace,
      body: {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1',
        kind: 'DPUServiceCredentialRequest',
        metadata: { name, namespace, ...(options.annotations ? { annotations: options.annotations } : {}) },
        spec,
      },
    }) as DpuServiceCredentialRequest;
  }

  /** Changes a request the way `kubectl edit` would. */
  async updateRequest(name: string, change: (request: DpuServiceCredentialRequest) => void, namespace = 'default'): Promise<void> {
    const objects = this.hostConfig().makeApiClient(CustomObjectsApi);
    const current = await objects.getNamespacedCustomObject({ ...parentApi, namespace, name }) as DpuServiceCredentialRequest;
    change(current);
    await objects.replaceNamespacedCustomObject({ ...parentApi, namespace, name, body: current });
  }

  async deleteRequest(name: string, namespace = 'default'): Promise<void> {
    await this.hostConfig().makeApiClient(CustomObjectsApi).deleteNamespacedCustomObject({ ...parentApi, namespace, name });
  }

  async stop(): Promise<void> {
    this.driver.close();
    this.secure.server.closeAllConnections();
    await Promise.all([this.secure.stop(), this.metricsServer.stop()]);
    await new Promise<void>((resolve) => {
      this.plain.close(() => resolve());
      this.plain.closeAllConnections();
    });
    this.hookTokens.close();
    this.clusters.close();
    await Promise.all([this.host.stop(), this.target.stop()]);
    await rm(this.dir, { recursive: true, force: true });
  }
}
