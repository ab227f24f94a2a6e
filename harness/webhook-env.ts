// A whole environment for end-to-end tests: a host and a target control plane, the
// CRDs, the target registered as DPUCluster default/dpu-cplane-tenant1, the webhook
// installed as the README says (HTTPS with the shipped certificate layout, the hook
// token) and served on loopback with a clock the test can move, and the Metacontroller
// driver reading the shipped CompositeController. A second, plain-HTTP listener of the
// same webhook, without hook authentication (what ALLOW_INSECURE_HOOKS=true allows a
// process), serves calls by hand and the load test only.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DpuServiceCredentialRequest } from '../server/api.js';
import { defaultPolicy, type Policy } from '../server/credential/policy.js';
import type { TargetClusters } from '../server/kube/clusters.js';
import { createLogger, silentLogger, type Logger } from '../server/log.js';
import type { Metrics } from '../server/metrics.js';
import { createWebhook, type Webhook } from '../server/webhook.js';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from './control-plane.js';
import { installDpuClusterCrd, registerDpuCluster, type DpuClusterRef } from './dpucluster.js';
import { createObjects, readManifests } from './kube-helpers.js';
import { MetacontrollerDriver } from './metacontroller/driver.js';
import { readCompositeController } from './metacontroller/controller-spec.js';
import { WebhookInstall } from './webhook-install.js';
import { connectionOf } from './connection.js';
import { insecureAppOf } from './insecure-app.js';

export const parentApi = { group: 'svc.dpu.nvidia.com', version: 'v1alpha1', plural: 'dpuservicecredentialrequests' } as const;

export const requestCrdPath = fileURLToPath(new URL('../deploy/crd/svc.dpu.nvidia.com_dpuservicecredentialrequests.yaml', import.meta.url));
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
  /** Whom the webhook calls the host cluster as (e.g. harness/webhook-identity.ts's webhookKubeConfig); default: the admin. */
  hostIdentity?: (host: ControlPlane) => Promise<KubeConfig>;
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
    readonly host: ControlPlane,
    readonly target: ControlPlane,
    readonly dpuCluster: DpuClusterRef,
    readonly install: WebhookInstall,
    /** The webhook as main.ts wires it, HTTPS with the hook token, on loopback. */
    readonly webhook: Webhook,
    private readonly plain: Server,
    public driver: MetacontrollerDriver,
    private readonly dir: string,
  ) {}

  get clusters(): TargetClusters {
    return this.webhook.clusters;
  }

  get metrics(): Metrics {
    return this.webhook.metrics;
  }

  /** The webhook restarted with other request limits (MAX_TOKEN_DURATION, …); undefined: the defaults. */
  usePolicy(policy: Policy | undefined): void {
    this.webhook.context.policy = policy ?? defaultPolicy;
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

    const clock = new TestClock();
    const log = options.log ?? (process.env.WEBHOOK_TEST_LOGS ? createLogger('debug') : silentLogger);
    const dir = await mkdtemp(join(tmpdir(), 'webhook-env-'));
    const install = await WebhookInstall.create(hostConfig, dir, { hookTokenSecretName: await hookTokenSecretName() });
    const webhook = await createWebhook({
      config: {
        port: 0, metricsPort: 0, remoteTimeoutMs: options.remoteTimeoutMs ?? 3_000, maxBodyBytes: 1024 * 1024,
        filePollIntervalMs: 50, shutdownTimeoutMs: 1_000, policy: defaultPolicy,
        hookBearerTokenFile: install.tokenFile, tlsCertFile: install.tlsVolume.path('tls.crt'), tlsKeyFile: install.tlsVolume.path('tls.key'),
      },
      hostConnection: connectionOf(options.hostIdentity ? await options.hostIdentity(host) : hostConfig), now: clock.now, log, listenHost: '127.0.0.1',
    });
    // Without TLS and without the hook token: the process would refuse this unless
    // ALLOW_INSECURE_HOOKS=true (server/config.ts). Built from the app directly, loopback only.
    const plain = await new Promise<Server>((resolve) => {
      const listening = createServer(insecureAppOf(webhook)).listen(0, '127.0.0.1', () => resolve(listening));
    });
    // One clock for the webhook and Metacontroller's timers: moving it makes requeues and the periodic resync due.
    const driver = await MetacontrollerDriver.start({
      host: hostConfig, network: await serviceNetwork(webhook.port), now: () => clock.now().getTime(),
    });
    return new WebhookEnv(clock, host, target, dpuCluster, install, webhook, plain, driver, dir);
  }

  /** The secure listener's loopback port (what the Service forwards to). */
  get securePort(): number {
    return this.webhook.port;
  }

  /** Plain HTTP, without the hook token: for the curl examples and the load test only. */
  get plainUrl(): string {
    return `http://127.0.0.1:${(this.plain.address() as AddressInfo).port}`;
  }

  /** /metrics, on its own plain-HTTP port as METRICS_PORT serves it. */
  get metricsUrl(): string {
    return `http://127.0.0.1:${this.webhook.metricsPort}/metrics`;
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
    // The plain listener shares the webhook's clusters: it closes first.
    await new Promise<void>((resolve) => {
      this.plain.close(() => resolve());
      this.plain.closeAllConnections();
    });
    await this.webhook.stop({ abortInFlight: true });
    await Promise.all([this.host.stop(), this.target.stop()]);
    await rm(this.dir, { recursive: true, force: true });
  }
}
