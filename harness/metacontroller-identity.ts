// Metacontroller's own identity on a test API server, as its production manifests make it
// (manifests/production/metacontroller-rbac.yaml, v4.17.2): ServiceAccount metacontroller in
// namespace metacontroller, bound to a ClusterRole with every verb on every resource. The
// admission policies request-status.yaml and selector-label.yaml admit only this username
// (the chart's default values), so a driver that writes status or child Secrets under them
// must call the API server as this account, not as the admin.
import type { KubeConfig } from '@kubernetes/client-node';
import { KubeApiError, KubeRestClient } from '../server/kube/rest.js';
import type { ControlPlane } from './control-plane.js';
import { connectionOf } from './connection.js';
import { tokenKubeConfig, whoAmI } from './kube-helpers.js';

export const metacontrollerAccount = { namespace: 'metacontroller', name: 'metacontroller' } as const;
export const metacontrollerUser = `system:serviceaccount:${metacontrollerAccount.namespace}:${metacontrollerAccount.name}`;

/** Creates what is missing of Metacontroller's account and returns a kubeconfig authenticating as it (a token of a day). */
export async function metacontrollerKubeConfig(plane: ControlPlane): Promise<KubeConfig> {
  const admin = new KubeRestClient(connectionOf(plane.adminKubeConfig()), { timeoutMs: 10_000 });
  const { namespace, name } = metacontrollerAccount;
  const createUnlessExists = async (path: string, body: object) => {
    try {
      await admin.request('POST', path, body);
    } catch (error) {
      if (!(error instanceof KubeApiError && error.statusCode === 409)) throw error;
    }
  };
  try {
    await createUnlessExists('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
    await createUnlessExists(`/api/v1/namespaces/${namespace}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
    await createUnlessExists('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'metacontroller' },
      rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
    });
    await createUnlessExists('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'metacontroller' },
      subjects: [{ kind: 'ServiceAccount', name, namespace }],
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'metacontroller' },
    });
    const minted = await admin.request<{ status: { token: string } }>('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 86_400 },
    });
    const config = tokenKubeConfig(plane.server, plane.pki.caCertPem, minted.status.token);
    const user = await whoAmI(config);
    if (user !== metacontrollerUser) throw new Error(`Metacontroller's token authenticates as ${user}`);
    return config;
  } finally {
    admin.close();
  }
}
