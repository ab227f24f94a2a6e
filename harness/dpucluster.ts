// Makes one control plane a DPUCluster of another, as DPF does: the DPUCluster CRD in
// the host, and a DPUCluster whose spec.kubeconfig names a Secret with the target's
// admin kubeconfig.
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { KubeRestClient } from '../server/kube/rest.js';
import { fileURLToPath } from 'node:url';
import type { ControlPlane } from './control-plane.js';
import { createObjects, readManifests } from './kube-helpers.js';

export const dpuClusterCrdPath = fileURLToPath(
  new URL('../deploy/dpucluster-crd/dpuclusters.provisioning.dpu.nvidia.com.yaml', import.meta.url),
);

export const dpuClusterApi = { group: 'provisioning.dpu.nvidia.com', version: 'v1alpha1', plural: 'dpuclusters' } as const;

export async function installDpuClusterCrd(host: KubeConfig): Promise<void> {
  await createObjects(host, await readManifests(dpuClusterCrdPath));
}

export interface DpuClusterOptions {
  name: string;
  namespace?: string;
  /** `super-admin.conf` (current DPF) or `admin.conf` (DPF 24.10/25.1). */
  kubeconfigKey?: 'super-admin.conf' | 'admin.conf';
  /** Overrides the Secret's data, to test broken kubeconfigs. */
  kubeconfigYaml?: string;
}

export interface DpuClusterRef {
  name: string;
  namespace: string;
  uid: string;
  kubeconfigSecretName: string;
}

export async function registerDpuCluster(host: KubeConfig, target: ControlPlane, options: DpuClusterOptions): Promise<DpuClusterRef> {
  const namespace = options.namespace ?? 'default';
  const kubeconfigSecretName = `${options.name}-admin-kubeconfig`;
  const kubeconfigKey = options.kubeconfigKey ?? 'super-admin.conf';
  await host.makeApiClient(CoreV1Api).createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: kubeconfigSecretName, namespace },
      data: { [kubeconfigKey]: Buffer.from(options.kubeconfigYaml ?? target.adminKubeconfigYaml()).toString('base64') },
    },
  });
  const created = await host.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    ...dpuClusterApi,
    namespace,
    body: {
      apiVersion: `${dpuClusterApi.group}/${dpuClusterApi.version}`,
      kind: 'DPUCluster',
      metadata: { name: options.name, namespace },
      spec: { type: 'static', maxNodes: 10, version: 'v1.36.3', kubeconfig: kubeconfigSecretName },
    },
  }) as { metadata: { uid: string } };
  return { name: options.name, namespace, uid: created.metadata.uid, kubeconfigSecretName };
}

/**
 * What DPF's DPUCluster controller writes at each reconcile: the phase and a Ready condition, on
 * the status subresource (a resourceVersion bump, nothing a sync reads).
 */
export async function updateDpuClusterStatus(client: KubeRestClient, namespace: string, name: string, phase: string,
  message = phase): Promise<KubernetesObject> {
  return await client.request<KubernetesObject>('PATCH', `/apis/${dpuClusterApi.group}/${dpuClusterApi.version}/namespaces/${namespace}/dpuclusters/${name}/status`, {
    status: { phase, conditions: [{ type: 'Ready', status: phase === 'Ready' ? 'True' : 'False', reason: phase, message, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] },
  }, { contentType: 'application/merge-patch+json' });
}
