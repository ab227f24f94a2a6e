// The webhook wired from its dependencies: the clusters, the metrics, the hook context, the
// hook app and its HTTP(S) server, the metrics app and its server, Events and hook tokens.
// main.ts gives it the process's configuration, clock and log; the tests give it their own.
import type { RequestListener } from 'node:http';
import { createApp, createMetricsApp } from './app.js';
import type { Config } from './config.js';
import type { HookContext } from './hooks/context.js';
import { HookTokens } from './http/bearer-auth.js';
import type { ClusterConnection } from './kube/connection.js';
import { TargetClusters } from './kube/clusters.js';
import { HostCluster } from './kube/host-cluster.js';
import type { ClusterOptions } from './kube/target-cluster.js';
import { EventRecorder } from './kube/events.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { startServer, type ClientTimeouts, type RunningServer } from './server.js';

/** The settings the wiring reads: a whole `Config` will do. */
export type WebhookConfig = Pick<Config, 'port' | 'remoteTimeoutMs' | 'maxBodyBytes' | 'filePollIntervalMs' | 'shutdownTimeoutMs'>
  & Partial<Pick<Config, 'metricsPort' | 'hostClusterServer' | 'hookBearerTokenFile' | 'tlsCertFile' | 'tlsKeyFile'
    | 'tlsClientCaFile' | 'tlsClientSubject' | 'policy' | 'idleTargetCloseMs'>>;

export interface WebhookDeps {
  config: WebhookConfig;
  log: Logger;
  /** The hooks' clock; default: the system clock. */
  now?: () => Date;
  /** How to reach the host cluster; absent: KUBECONFIG, ~/.kube/config or the in-cluster config. */
  hostConnection?: ClusterConnection;
  /** Another webhook's clusters, shared (and left open by stop()); absent: its own, from the host kubeconfig. */
  clusters?: TargetClusters;
  /** Absent: a registry of its own. */
  metrics?: Metrics;
  /** Hook tokens held by the caller (left open by stop()); absent: read from config.hookBearerTokenFile, if set. */
  hookTokens?: HookTokens;
  /** Record Events on the requests (default true). */
  recordEvents?: boolean;
  /** The address the servers listen on; absent: every interface. */
  listenHost?: string;
  clientTimeouts?: ClientTimeouts;
}

/** The webhook's parts, wired and not listening. */
export interface WiredWebhook {
  clusters: TargetClusters;
  metrics: Metrics;
  /** What the hooks share; its `policy` is the one requests are checked against. */
  context: HookContext;
  hookTokens: HookTokens | undefined;
  /** The hooks and probes, with authentication as configured. */
  app: RequestListener;
  /** MAX_BODY_BYTES, as the app was built with it. */
  maxBodyBytes: number;
  metricsApp: RequestListener;
  /** Closes what it opened itself: the hook-token files and the cluster clients. */
  close(): void;
}

export interface Webhook extends WiredWebhook {
  /** The hook port (PORT; 0 picks a free one). */
  port: number;
  /** The metrics port (METRICS_PORT); undefined when config.metricsPort is unset. */
  metricsPort: number | undefined;
  hookServer: RunningServer;
  /**
   * Stops accepting, lets the hooks in flight finish (up to the shutdown timeout), then closes
   * what it opened. `abortInFlight`: close every connection at once instead (tests).
   */
  stop(options?: { abortInFlight?: boolean }): Promise<void>;
}

/** The parts, wired from their dependencies, without a socket. */
export async function wireWebhook(deps: WebhookDeps): Promise<WiredWebhook> {
  const { config, log } = deps;
  const metrics = deps.metrics ?? new Metrics();
  const clusterOptions: ClusterOptions = {
    timeoutMs: config.remoteTimeoutMs,
    observeApiCall: metrics.observeApiCall,
    log,
    ...(config.idleTargetCloseMs !== undefined ? { idleCloseMs: config.idleTargetCloseMs } : {}),
    ...(config.hostClusterServer ? { hostClusterServer: config.hostClusterServer } : {}),
  };
  const clusters = deps.clusters ?? new TargetClusters(
    (deps.hostConnection ? HostCluster.fromConfig(deps.hostConnection, clusterOptions) : HostCluster.fromEnvironment(clusterOptions)),
    clusterOptions);
  const ownTokens = !deps.hookTokens && config.hookBearerTokenFile ? new HookTokens(config.hookBearerTokenFile, config.filePollIntervalMs) : undefined;
  const hookTokens = deps.hookTokens ?? ownTokens;
  const context: HookContext = { clusters, now: deps.now ?? (() => new Date()), log, ...(config.policy ? { policy: config.policy } : {}) };
  const app = createApp(context, {
    maxBodyBytes: config.maxBodyBytes, metrics, hostClusterReachable: () => clusters.host.checkReachable(),
    ...(hookTokens ? { hookTokens } : {}),
    ...(config.tlsClientSubject !== undefined ? { clientCertificateSubject: config.tlsClientSubject } : {}),
    ...((deps.recordEvents ?? true) ? { events: new EventRecorder(clusters.host.client, log) } : {}),
  });
  return {
    clusters, metrics, context, hookTokens, app, maxBodyBytes: config.maxBodyBytes,
    metricsApp: createMetricsApp(metrics),
    close: () => {
      ownTokens?.close();
      if (!deps.clusters) clusters.close();
    },
  };
}

/** The webhook wired and listening: the hooks on config.port, /metrics on config.metricsPort (if set). */
export async function createWebhook(deps: WebhookDeps): Promise<Webhook> {
  const { config, log } = deps;
  const wired = await wireWebhook(deps);
  const listen = {
    shutdownTimeoutMs: config.shutdownTimeoutMs, log,
    ...(deps.listenHost !== undefined ? { host: deps.listenHost } : {}),
    ...(deps.clientTimeouts ? { clientTimeouts: deps.clientTimeouts } : {}),
  };
  const hookServer = await startServer(wired.app, {
    ...listen, port: config.port,
    ...(config.tlsCertFile && config.tlsKeyFile
      ? { tls: {
        certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, pollIntervalMs: config.filePollIntervalMs,
        ...(config.tlsClientCaFile ? { clientCaFile: config.tlsClientCaFile } : {}),
      } }
      : {}),
  });
  // Plain HTTP: the metrics carry no credential, and Prometheus then needs no CA to scrape them.
  const metricsServer = config.metricsPort === undefined ? undefined : await startServer(wired.metricsApp, { ...listen, port: config.metricsPort });
  log.info('listening', {
    port: hookServer.port, metricsPort: metricsServer?.port, tls: Boolean(config.tlsCertFile), hookAuthentication: Boolean(wired.hookTokens),
    clientCertificates: Boolean(config.tlsClientCaFile),
    ...(config.tlsClientSubject !== undefined ? { clientSubject: config.tlsClientSubject } : {}), hostCluster: wired.clusters.host.client.server,
  });
  return {
    ...wired,
    port: hookServer.port,
    metricsPort: metricsServer?.port,
    hookServer,
    stop: async (options = {}) => {
      if (options.abortInFlight) hookServer.server.closeAllConnections();
      await Promise.all([hookServer.stop(), metricsServer?.stop()]);
      wired.close();
    },
  };
}
