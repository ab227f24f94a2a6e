// Tenant boundaries. A request may use a DPUCluster, and (in host mode) make its
// ServiceAccount, in its own namespace. Anything in another namespace needs a grant from
// that namespace's owner, given the Kubernetes way: a RoleBinding there that gives verb
// `use` on the DPUCluster (or on ServiceAccounts) to the group of the requesting namespace,
// system:serviceaccounts:<namespace> (or to system:serviceaccounts: every namespace). The
// webhook asks with a SubjectAccessReview; the shipped ValidatingAdmissionPolicy asks the
// same question at `kubectl apply`, through CEL's authorizer.
import type { ValidSpec } from './validate.js';

export const grantVerb = 'use';
/** The identity a request's namespace is checked as; it needs not exist. */
export const requesterServiceAccountName = 'dpu-credential-requests';

export interface Reference {
  group: string;
  resource: string;
  namespace: string;
  /** Absent: any object of the resource in that namespace (ServiceAccounts made there). */
  name?: string;
  /** What it is, for messages: "DPUCluster x/y". */
  what: string;
}

/** What a spec reaches outside its own namespace; each needs a grant. */
export function crossNamespaceReferences(spec: ValidSpec): Reference[] {
  const own = spec.request.namespace;
  if (spec.targetCluster) {
    const { namespace, name } = spec.targetCluster;
    return namespace === own ? [] : [{
      group: 'provisioning.dpu.nvidia.com', resource: 'dpuclusters', namespace, name, what: `DPUCluster ${namespace}/${name}`,
    }];
  }
  // Host mode: the ServiceAccount (and its tokens) are made in this cluster, in its namespace.
  const { namespace } = spec.serviceAccount;
  return namespace === own ? [] : [{ group: '', resource: 'serviceaccounts', namespace, what: `ServiceAccounts in namespace ${namespace}` }];
}

/** The user and groups a request's namespace is checked as. */
export function requesterOf(namespace: string): { user: string; groups: string[] } {
  return {
    user: `system:serviceaccount:${namespace}:${requesterServiceAccountName}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
  };
}

export function missingGrantMessage(requestNamespace: string, reference: Reference): string {
  const target = `${reference.resource}${reference.name ? `/${reference.name}` : ''}`;
  return `namespace ${requestNamespace} may not use ${reference.what}: it needs a grant there, a RoleBinding in namespace `
    + `${reference.namespace} that gives verb ${grantVerb} on ${target} (e.g. ClusterRole dpu-credential-user) to group `
    + `system:serviceaccounts:${requestNamespace}`;
}
