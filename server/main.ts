// Process start: configuration, wiring, listen, shutdown.
import { createApp } from './app.js';
import { loadConfig } from './config.js';
import { HostCluster, TargetClusters } from './kube/clusters.js';
import { createLogger } from './log.js';

const config = loadConfig();
const log = createLogger(config.logLevel);
const clusterOptions = { timeoutMs: config.remoteTimeoutMs, ...(config.hostClusterServer ? { hostClusterServer: config.hostClusterServer } : {}) };
const clusters = new TargetClusters(await HostCluster.fromEnvironment(clusterOptions), clusterOptions);
const app = createApp({ clusters, now: () => new Date(), log }, { maxBodyBytes: config.maxBodyBytes });

const server = app.listen(config.port, () => {
  log.info('listening', { port: config.port, hostCluster: clusters.host.client.server });
});

function shutdown(signal: string): void {
  log.info('shutting down', { signal });
  server.close(() => {
    clusters.close();
    process.exit(0);
  });
}
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));
