// Process start: configuration, wiring, listen, graceful shutdown.
import { createApp, createMetricsApp } from './app.js';
import { insecureHooks, loadConfig } from './config.js';
import { HostCluster, TargetClusters } from './kube/clusters.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics.js';
import { startServer } from './server.js';
import { HookTokens } from './http/bearer-auth.js';
import { EventRecorder } from './kube/events.js';

const config = loadConfig();
const log = createLogger(config.logLevel);
const metrics = new Metrics();
const clusterOptions = {
  timeoutMs: config.remoteTimeoutMs,
  observeApiCall: metrics.observeApiCall,
  idleCloseMs: config.idleTargetCloseMs,
  ...(config.hostClusterServer ? { hostClusterServer: config.hostClusterServer } : {}),
};
const clusters = new TargetClusters(await HostCluster.fromEnvironment(clusterOptions), clusterOptions);
const hookTokens = config.hookBearerTokenFile ? new HookTokens(config.hookBearerTokenFile, config.filePollIntervalMs) : undefined;

const app = createApp({ clusters, now: () => new Date(), log, policy: config.policy }, {
  maxBodyBytes: config.maxBodyBytes,
  metrics,
  ...(hookTokens ? { hookTokens } : {}),
  ...(config.tlsClientSubject !== undefined ? { clientCertificateSubject: config.tlsClientSubject } : {}),
  events: new EventRecorder(clusters.host.client, log),
  hostClusterReachable: () => clusters.host.checkReachable(),
});
const running = await startServer(app, {
  port: config.port,
  ...(config.tlsCertFile && config.tlsKeyFile
    ? { tls: {
      certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, pollIntervalMs: config.filePollIntervalMs,
      ...(config.tlsClientCaFile ? { clientCaFile: config.tlsClientCaFile } : {}),
    } }
    : {}),
  shutdownTimeoutMs: config.shutdownTimeoutMs,
  log,
});
// Plain HTTP: the metrics carry no credential, and Prometheus then needs no CA to scrape them.
const metricsServer = await startServer(createMetricsApp(metrics), { port: config.metricsPort, shutdownTimeoutMs: config.shutdownTimeoutMs, log });
log.info('listening', {
  port: running.port, metricsPort: metricsServer.port, tls: Boolean(config.tlsCertFile), hookAuthentication: Boolean(hookTokens),
  clientCertificates: Boolean(config.tlsClientCaFile),
  ...(config.tlsClientSubject !== undefined ? { clientSubject: config.tlsClientSubject } : {}), hostCluster: clusters.host.client.server,
});
const missing = insecureHooks(config);
if (missing.length) {
  // loadConfig let this through only because ALLOW_INSECURE_HOOKS=true.
  log.warn(`INSECURE: ALLOW_INSECURE_HOOKS=true and the hooks are served with ${missing.join(' and ')}: `
    + 'anyone who reaches this port can mint tokens or read them in transit. Never run this in a cluster.', { port: running.port });
}

async function shutdown(signal: string): Promise<void> {
  log.info('shutting down', { signal });
  await Promise.all([running.stop(), metricsServer.stop()]);
  hookTokens?.close();
  clusters.close();
  log.info('stopped');
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
