// Tests and benches build kubeconfigs with client-node's KubeConfig (a dev dependency); the
// server takes a ClusterConnection. The KubeConfig is read by the server's own reader of a
// trusted kubeconfig, the host's (server/kube/connection.ts): one converter, not a second one here.
import type { KubeConfig } from '@kubernetes/client-node';
import { trustedKubeconfigConnection, type ClusterConnection } from '../server/kube/connection.js';

export function connectionOf(config: KubeConfig): ClusterConnection {
  // client-node exports a field it holds no value for as null (an entry read without its user or
  // cluster map); a kubeconfig leaves such a field out, and the reader refuses a present exec or password.
  const text = JSON.stringify(JSON.parse(config.exportConfig(), (_key, value: unknown) => value ?? undefined));
  // Relative file paths: relative to the working directory, as client-node would open them.
  return trustedKubeconfigConnection(text, process.cwd());
}
