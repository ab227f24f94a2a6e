// Process start: configuration, wiring, listen, graceful shutdown.
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { HostCluster, TargetClusters } from './kube/clusters.js';
import { createLogger } from './log.js';
import { Metrics } from './metrics.js';
import { startServer } from './server.js';
import { WatchedFile } from './watched-file.js';

const config = loadConfig();
const log = createLogger(config.logLevel);
const metrics = new Metrics();
const clusterOptions = {
  timeoutMs: config.remoteTimeoutMs,
  observeApiCall: metrics.observeApiCall,
  ...(config.hostClusterServer ? { hostClusterServer: config.hostClusterServer } : {}),
};
const clusters = new TargetClusters(await HostCluster.fromEnvironment(clusterOptions), clusterOptions);
const hookToken = config.hookBearerTokenFile ? new WatchedFile(config.hookBearerTokenFile, config.filePollIntervalMs) : undefined;

const app = createApp({ clusters, now: () => new Date(), log }, {
  maxBodyBytes: config.maxBodyBytes,
  metrics,
  ...(hookToken ? { hookToken } : {}),
  hostClusterReachable: () => clusters.host.checkReachable(),
});
const running = await startServer(app, {
  port: config.port,
  ...(config.tlsCertFile && config.tlsKeyFile
    ? { tls: { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, pollIntervalMs: config.filePollIntervalMs } }
    : {}),
  shutdownTimeoutMs: config.shutdownTimeoutMs,
  log,
});
log.info('listening', {
  port: running.port, tls: Boolean(config.tlsCertFile), hookAuthentication: Boolean(hookToken), hostCluster: clusters.host.client.server,
});
if (!hookToken) log.warn('hook authentication is off: anyone who reaches this port can mint tokens (set HOOK_BEARER_TOKEN_FILE)');

async function shutdown(signal: string): Promise<void> {
  log.info('shutting down', { signal });
  await running.stop();
  hookToken?.close();
  clusters.close();
  log.info('stopped');
  process.exit(0);
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
