// deploy/admission/metacontroller-finalizer.yaml installed on a test API server, as the chart
// installs it where the API server serves MutatingAdmissionPolicy (Kubernetes 1.36 here).
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { DpuServiceCredentialRequest } from '../../server/api.js';
import { createObjects, readManifests } from './kube-helpers.js';
import { parentApi } from './webhook-env.js';

export const finalizerPolicyPath = fileURLToPath(new URL('../../deploy/admission/metacontroller-finalizer.yaml', import.meta.url));

/**
 * Creates the policy and returns once the API server applies it: probed with dry-run creates,
 * which run admission and store nothing. Until the API server has loaded the request CRD's
 * schema for the policy (it polls every 5 s), creates are refused with 503 (README).
 */
export async function installFinalizerPolicy(host: KubeConfig, finalizer: string, namespace = 'default'): Promise<void> {
  await createObjects(host, await readManifests(finalizerPolicyPath));
  const objects = host.makeApiClient(CustomObjectsApi);
  for (let attempt = 0; ; attempt++) {
    const probe = await objects.createNamespacedCustomObject({
      ...parentApi, namespace, dryRun: 'All',
      body: {
        apiVersion: 'svc.dpu.nvidia.com/v1alpha1', kind: 'DPUServiceCredentialRequest', metadata: { name: `finalizer-policy-probe-${attempt}` },
        spec: { serviceAccount: { name: 'probe' }, type: 'kubeconfig', secret: { name: 'probe' } },
      },
    }).catch((error: { code?: number }) => {
      if (error.code === 503) return undefined;
      throw error;
    }) as DpuServiceCredentialRequest | undefined;
    if (probe?.metadata?.finalizers?.includes(finalizer)) return;
    if (attempt > 300) throw new Error('the MutatingAdmissionPolicy did not take effect in 30 s');
    await sleep(100);
  }
}
