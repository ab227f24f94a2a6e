// deploy/admission/metacontroller-finalizer.yaml installed on a test API server, as the chart
// installs it where the API server serves MutatingAdmissionPolicy (Kubernetes 1.36 here).
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { fileURLToPath } from 'node:url';
import type { DpuServiceCredentialRequest } from '../server/api.js';
import { eventually } from './eventually.js';
import { createObjects, readManifests } from './kube-helpers.js';
import { parentApi } from './webhook-env.js';

export const finalizerPolicyPath = fileURLToPath(new URL('../deploy/admission/metacontroller-finalizer.yaml', import.meta.url));

/**
 * Creates the policy and returns once the API server applies it: probed with dry-run creates,
 * which run admission and store nothing. Until the API server has loaded the request CRD's
 * schema for the policy (it polls every 5 s), creates are refused with 503 (README).
 */
export async function installFinalizerPolicy(host: KubeConfig, finalizer: string, namespace = 'default'): Promise<void> {
  await createObjects(host, await readManifests(finalizerPolicyPath));
  const objects = host.makeApiClient(CustomObjectsApi);
  let probes = 0;
  await eventually(async () => {
    const probe = await objects.createNamespacedCustomObject({
      ...parentApi, namespace, dryRun: 'All',
      body: {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name: `finalizer-policy-probe-${probes++}` },
        spec: { serviceAccount: { name: 'probe' }, type: 'kubeconfig', secret: { name: 'probe' } },
      },
    }) as DpuServiceCredentialRequest;
    return probe.metadata?.finalizers?.includes(finalizer);
  }, 'the MutatingAdmissionPolicy adds the finalizer (503 until the API server has the CRD\'s schema for it)', { timeoutMs: 30_000, intervalMs: 100 });
}
