// Tests and benches build kubeconfigs with client-node's KubeConfig (a dev dependency); the
// server takes a ClusterConnection. This reads the current context's cluster and user into
// one, as client-node would have applied them: inline data or files, token or certificate.
import type { KubeConfig } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import type { ClusterConnection } from '../server/kube/connection.js';

const material = (data: string | undefined, file: string | undefined): string | undefined =>
  data ? Buffer.from(data, 'base64').toString('utf8') : file ? readFileSync(file, 'utf8') : undefined;

export function connectionOf(config: KubeConfig): ClusterConnection {
  const cluster = config.getCurrentCluster();
  const user = config.getCurrentUser();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  if (user?.exec || user?.authProvider) throw new Error('connectionOf: exec and auth-provider users are not supported');
  const caPem = material(cluster.caData, cluster.caFile);
  const clientCertPem = material(user?.certData, user?.certFile);
  const clientKeyPem = material(user?.keyData, user?.keyFile);
  const token = user?.token;
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ...(caPem !== undefined ? { caPem } : {}),
    ...(cluster.tlsServerName ? { tlsServerName: cluster.tlsServerName } : {}),
    ...(clientCertPem !== undefined && clientKeyPem !== undefined ? { clientCertPem, clientKeyPem } : {}),
    ...(cluster.skipTLSVerify ? { insecureSkipTlsVerify: true } : {}),
    ...(token ? { bearerToken: () => token } : {}),
  };
}
