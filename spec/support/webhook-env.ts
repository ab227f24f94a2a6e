// A whole environment for end-to-end tests: a host and a target control plane, the
// CRDs, the target registered as DPUCluster default/dpu-cplane-tenant1, the webhook
// served on loopback with a clock the test can move, and the Metacontroller driver.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { createApp } from '../../server/app.js';
import { HostCluster, TargetClusters } from '../../server/kube/clusters.js';
import { createLogger, silentLogger, type Logger } from '../../server/log.js';
import { Metrics } from '../../server/metrics.js';
import { startControlPlane, type ControlPlane, type ControlPlaneOptions } from './control-plane.js';
import { installDpuClusterCrd, registerDpuCluster, type DpuClusterRef } from './dpucluster.js';
import { createObjects, readManifests } from './kube-helpers.js';
import { MetacontrollerDriver, parentApi } from './metacontroller-driver.js';

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

export class WebhookEnv {
  private constructor(
    readonly clock: TestClock,
    readonly metrics: Metrics,
    readonly host: ControlPlane,
    readonly target: ControlPlane,
    readonly dpuCluster: DpuClusterRef,
    readonly clusters: TargetClusters,
    private readonly server: Server,
    readonly driver: MetacontrollerDriver,
  ) {}

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
    const clusters = new TargetClusters(await HostCluster.fromConfig(hostConfig, clusterOptions), clusterOptions);
    const clock = new TestClock();
    const app = createApp(
      { clusters, now: clock.now, log: options.log ?? (process.env.WEBHOOK_TEST_LOGS ? createLogger('debug') : silentLogger) },
      { maxBodyBytes: 1024 * 1024, metrics, hostClusterReachable: () => clusters.host.checkReachable() },
    );
    const server = await new Promise<Server>((resolve) => {
      const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return new WebhookEnv(clock, metrics, host, target, dpuCluster, clusters, server, new MetacontrollerDriver(hostConfig, url));
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
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
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.clusters.close();
    await Promise.all([this.host.stop(), this.target.stop()]);
  }
}
