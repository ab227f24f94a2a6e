// Label and annotation keys this webhook writes, and how an object is named ("namespace/name").
// The label keys are DPF's, so that ServiceAccounts created by DPF's own controller (releases
// after v24.10) are recognised as managed; DPF v24.10's carry no labels and are handed over by
// annotation (service-account-claim.ts).
import type { DpuServiceCredentialRequest } from '../api.js';

export interface NamespacedName {
  namespace: string;
  name: string;
}

export const managedByLabel = 'svc.dpu.nvidia.com/managed-by-controller';
export const managedByValue = 'dpuservicecredentialrequestcontroller';
export const requestNameLabel = 'svc.dpu.nvidia.com/credential-request-name';
export const requestNamespaceLabel = 'svc.dpu.nvidia.com/credential-request-namespace';

/** Changing this annotation's value on a request forces a new token. */
export const rotateAnnotation = 'svc.dpu.nvidia.com/rotate';

/**
 * Set on an existing Secret, with a request's name as the value, by someone who may edit that
 * Secret: it consents to the request of that name (in the Secret's namespace) taking it over.
 * How Secrets written by DPF's controller, which carry no owner reference, are migrated. On a
 * ServiceAccount its value is "namespace/name" of the request (service-account-claim.ts).
 */
export const adoptAnnotation = 'svc.dpu.nvidia.com/adopt-for-request';

/** Bookkeeping on the output Secret: what its token was minted for, read back by the next sync. */
export const tokenAnnotations = {
  issuedAt: 'svc.dpu.nvidia.com/token-issued-at',
  expiresAt: 'svc.dpu.nvidia.com/token-expires-at',
  serviceAccount: 'svc.dpu.nvidia.com/service-account',
  serviceAccountUid: 'svc.dpu.nvidia.com/service-account-uid',
  targetCluster: 'svc.dpu.nvidia.com/target-cluster',
  targetClusterUid: 'svc.dpu.nvidia.com/target-cluster-uid',
  duration: 'svc.dpu.nvidia.com/token-duration',
  rotation: 'svc.dpu.nvidia.com/rotation',
} as const;

export function managedLabels(requestNamespace: string, requestName: string): Record<string, string> {
  return {
    [managedByLabel]: managedByValue,
    [requestNameLabel]: requestName,
    [requestNamespaceLabel]: requestNamespace,
  };
}

export const namespacedName = (namespace: string, name: string) => `${namespace}/${name}`;

/** "namespace/name", as the status and the Secret's annotations record it; a part that is missing is ''. */
export function parseNamespacedName(reference: string): NamespacedName {
  const [namespace = '', name = ''] = reference.split('/');
  return { namespace, name };
}

/** The request's own namespace and name, from its metadata ('' where missing). */
export const requestRefOf = (request: DpuServiceCredentialRequest): NamespacedName =>
  ({ namespace: request.metadata?.namespace ?? '', name: request.metadata?.name ?? '' });
