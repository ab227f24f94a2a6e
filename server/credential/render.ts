// The output Secret, in either format, from the token and the target cluster's endpoint.
import type { SecretObject } from '../api.js';
import { managedLabels } from './names.js';
import type { TokenRecord } from './token.js';
import { tokenRecordAnnotations } from './token-record.js';
import type { ValidSpec } from './validate.js';

export interface ClusterEndpoint {
  /** Cluster name in the kubeconfig output: the admin kubeconfig's, or `incluster` for the host. */
  clusterName: string;
  server: string;
  caPem: string;
}

const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

// A target cluster's CA is the same at every sync of every request for it: its base64 is kept for the last one seen.
let lastCa = { pem: '', base64: '' };
const caBase64 = (pem: string) => {
  if (pem !== lastCa.pem) lastCa = { pem, base64: base64(pem) };
  return lastCa.base64;
};

/**
 * The key of a kubeconfig Secret that holds the bare token, and the kubeconfig user's
 * `tokenFile`. client-go (kubectl, controller-runtime) reads a relative tokenFile beside the
 * kubeconfig, re-reads it about every minute and, when both are set, prefers it to the inline
 * token: mounted as a volume, a long-running client follows renewals and rotations without a
 * restart; copied anywhere else, the inline token still works.
 */
const kubeconfigTokenKey = 'token';

/**
 * The kubeconfig, written out directly rather than through a YAML library (this runs on
 * every sync). Every value is a JSON string, which is a valid YAML double-quoted scalar,
 * so names from the admin kubeconfig cannot break the document.
 */
export function renderKubeconfig(endpoint: ClusterEndpoint, serviceAccount: { namespace: string; name: string }, token: string): string {
  const q = JSON.stringify;
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `  - name: ${q(endpoint.clusterName)}`,
    '    cluster:',
    `      server: ${q(endpoint.server)}`,
    `      certificate-authority-data: ${caBase64(endpoint.caPem)}`,
    'users:',
    `  - name: ${q(serviceAccount.name)}`,
    '    user:',
    `      token: ${q(token)}`,
    `      tokenFile: ${q(kubeconfigTokenKey)}`,
    'contexts:',
    `  - name: ${q(serviceAccount.name)}`,
    '    context:',
    `      cluster: ${q(endpoint.clusterName)}`,
    `      user: ${q(serviceAccount.name)}`,
    `      namespace: ${q(serviceAccount.namespace)}`,
    `current-context: ${q(serviceAccount.name)}`,
    '',
  ].join('\n');
}

/**
 * Host and port as InClusterConfig wants them: IPv6 without brackets, and the
 * scheme's default port when the URL names none (DPF writes '' there, which breaks it).
 */
export function hostAndPort(server: string): { host: string; port: string } {
  const url = new URL(server);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port || (url.protocol === 'http:' ? '80' : '443');
  return { host, port };
}

/** The type of every output Secret. A Secret's type never changes: one of another type cannot be written. */
export const outputSecretType = 'Opaque';

export function renderSecret(spec: ValidSpec, endpoint: ClusterEndpoint, record: TokenRecord): SecretObject {
  let data: Record<string, string>;
  if (spec.type === 'kubeconfig') {
    data = { kubeconfig: base64(renderKubeconfig(endpoint, spec.serviceAccount, record.token)), [kubeconfigTokenKey]: base64(record.token) };
  } else {
    const { host, port } = hostAndPort(endpoint.server);
    data = {
      TOKEN_FILE: base64(record.token),
      KUBERNETES_SERVICE_HOST: base64(host),
      KUBERNETES_SERVICE_PORT: base64(port),
      KUBERNETES_CA_DATA: caBase64(endpoint.caPem),
    };
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: spec.secret.name,
      namespace: spec.secret.namespace,
      labels: { ...spec.secretLabels, ...managedLabels(spec.request.namespace, spec.request.name) },
      annotations: { ...spec.secretAnnotations, ...tokenRecordAnnotations(record) },
    },
    type: outputSecretType,
    data,
  };
}
