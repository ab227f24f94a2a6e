// The webhook's app with a host cluster that is a closed port: every remote call fails at
// once, so tests of the HTTP layer and of hostile input need no control plane.
import { KubeConfig } from '@kubernetes/client-node';
import { createApp } from '../../server/app.js';
import { HostCluster, TargetClusters } from '../../server/kube/clusters.js';
import { silentLogger } from '../../server/log.js';
import { Metrics } from '../../server/metrics.js';
import type { HookTokens } from '../../server/http/bearer-auth.js';
import { connectionOf } from './connection.js';

export async function unreachableHostApp(options: { maxBodyBytes: number; hookTokens?: HookTokens; clientCertificateSubject?: string; now?: () => Date; metrics?: Metrics }) {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'closed', server: 'https://127.0.0.1:1', caData: Buffer.from('unused').toString('base64') }],
    users: [{ name: 'nobody', token: 'unused' }],
    contexts: [{ name: 'closed', cluster: 'closed', user: 'nobody' }],
    currentContext: 'closed',
  });
  const clusterOptions = { timeoutMs: 300 };
  const clusters = new TargetClusters(await HostCluster.fromConfig(connectionOf(config), clusterOptions), clusterOptions);
  return createApp({ clusters, now: options.now ?? (() => new Date()), log: silentLogger }, {
    maxBodyBytes: options.maxBodyBytes,
    metrics: options.metrics ?? new Metrics(),
    ...(options.hookTokens ? { hookTokens: options.hookTokens } : {}),
    ...(options.clientCertificateSubject !== undefined ? { clientCertificateSubject: options.clientCertificateSubject } : {}),
    hostClusterReachable: () => clusters.host.checkReachable(),
  });
}
