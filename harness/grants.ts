// Grants as a namespace's owner gives them: RoleBindings to the group of the requesting
// namespace (server/credential/tenancy.ts), made with the host cluster's admin rights.
import { RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';

const group = (requestNamespace: string) =>
  ({ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: `system:serviceaccounts:${requestNamespace}` });

/**
 * Lets requests of `requestNamespace` use the namespaces `targetNamespaces` of the DPUClusters
 * in `clusterNamespace` (a Role with resourceNames, bound there). Resolves to a function that withdraws it.
 */
export async function grantTargetNamespaces(host: KubeConfig, clusterNamespace: string, requestNamespace: string,
  targetNamespaces: string[], name: string): Promise<() => Promise<void>> {
  const rbac = host.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace: clusterNamespace,
    body: {
      metadata: { name },
      rules: [{ apiGroups: ['svc.dpu.nvidia.com'], resources: ['targetnamespaces'], resourceNames: targetNamespaces, verbs: ['use'] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: clusterNamespace,
    body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [group(requestNamespace)] },
  });
  return async () => {
    await rbac.deleteNamespacedRoleBinding({ namespace: clusterNamespace, name });
    await rbac.deleteNamespacedRole({ namespace: clusterNamespace, name });
  };
}

/** Binds the ClusterRole `clusterRole` in `namespace` to the group of `requestNamespace` (or to `subject`). */
export async function bindClusterRole(host: KubeConfig, namespace: string, clusterRole: string, requestNamespace: string,
  name: string, subject = group(requestNamespace)): Promise<() => Promise<void>> {
  const rbac = host.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole }, subjects: [subject] },
  });
  return async () => {
    await rbac.deleteNamespacedRoleBinding({ namespace, name });
  };
}
