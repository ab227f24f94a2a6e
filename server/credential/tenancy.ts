// Tenant boundaries. What a request may reach is decided by the namespaces that own it,
// the Kubernetes way: a RoleBinding in the granting namespace that gives verb `use` to the
// group of the requesting namespace, system:serviceaccounts:<namespace> (or to
// system:serviceaccounts: every namespace). The webhook asks with a SubjectAccessReview at
// every sync; the shipped ValidatingAdmissionPolicy asks the same question, for the same
// user and groups, at `kubectl apply`, through CEL's authorizer.serviceAccount().
//
// What needs a grant (a "scope" is where one ServiceAccount of a request lives):
// - a DPUCluster in another namespace: `use` on dpuclusters/<name> there;
// - a namespace of a DPUCluster's cluster other than the request's own namespace name:
//   `use` on targetnamespaces/<namespace> (group svc.dpu.nvidia.com) in the DPUCluster's
//   namespace. The DPUCluster's owner decides which of its cluster's namespaces a tenant
//   reaches; the mirror of the tenant's own namespace is the one it gets without asking.
// - host mode, a ServiceAccount in another namespace: `use` on serviceaccounts there.
// And no grant opens a protected namespace (kube-* and the configured list), in any cluster:
// Kubernetes' own ClusterRoleBindings name ServiceAccounts there that may not exist yet, and
// whoever creates such a name first gets its rights.
import { parseNamespacedName, type NamespacedName } from './names.js';
import type { ValidSpec } from './validate.js';

export const grantVerb = 'use';
/** The identity a request's namespace is checked as; it needs not exist. */
export const requesterServiceAccountName = 'dpu-credential-requests';
/** The resource a DPUCluster's namespace grants its cluster's namespaces by (RBAC resourceNames). */
const targetNamespacesResource = { group: 'svc.dpu.nvidia.com', resource: 'targetnamespaces' } as const;

/** Where one ServiceAccount of a request lives. */
export interface Scope {
  requestNamespace: string;
  /** Absent: the host cluster. */
  targetCluster?: NamespacedName;
  serviceAccountNamespace: string;
}

export interface Reference {
  group: string;
  resource: string;
  namespace: string;
  /** Absent: any object of the resource in that namespace (ServiceAccounts made there). */
  name?: string;
  /** What it is, for messages: "DPUCluster x/y". */
  what: string;
}

/** Why a scope is refused: a protected namespace, or a reference without a grant. */
export type Refusal =
  | { kind: 'protected'; namespace: string; where: string }
  | { kind: 'ungranted'; reference: Reference };

export function scopeOfSpec(spec: ValidSpec): Scope {
  return {
    requestNamespace: spec.request.namespace,
    ...(spec.targetCluster ? { targetCluster: spec.targetCluster } : {}),
    serviceAccountNamespace: spec.serviceAccount.namespace,
  };
}

/** The scope of a ServiceAccount recorded as "namespace/name", in the DPUCluster "namespace/name" (absent: the host). */
export function scopeOfRecord(requestNamespace: string, serviceAccount: string, targetCluster: string | undefined): Scope {
  return {
    requestNamespace,
    ...(targetCluster ? { targetCluster: parseNamespacedName(targetCluster) } : {}),
    serviceAccountNamespace: parseNamespacedName(serviceAccount).namespace,
  };
}

/** `patterns`: namespace names, or prefixes ending in `*`. */
export function isProtectedNamespace(namespace: string, patterns: readonly string[]): boolean {
  return namespace.startsWith('kube-') || patterns.some((pattern) =>
    pattern.endsWith('*') ? namespace.startsWith(pattern.slice(0, -1)) : namespace === pattern);
}

/**
 * The UID recorded for a ServiceAccount in `namespace`, if the webhook may act on it by that UID
 * whatever its labels say (use it, delete it): never in a protected namespace, so that a made-up
 * status cannot name Kubernetes' own ServiceAccounts there.
 */
export function trustedServiceAccountUid(namespace: string, recordedUid: string | undefined, patterns: readonly string[]): string | undefined {
  return recordedUid && !isProtectedNamespace(namespace, patterns) ? recordedUid : undefined;
}

/** The grants a scope needs (none for what lies in the request's own namespace). */
export function grantsNeeded(scope: Scope): Reference[] {
  const own = scope.requestNamespace;
  const { serviceAccountNamespace } = scope;
  if (!scope.targetCluster) {
    return serviceAccountNamespace === own ? [] : [{
      group: '', resource: 'serviceaccounts', namespace: serviceAccountNamespace, what: `ServiceAccounts in namespace ${serviceAccountNamespace}`,
    }];
  }
  const { namespace, name } = scope.targetCluster;
  const references: Reference[] = [];
  if (namespace !== own) {
    references.push({ group: 'provisioning.dpu.nvidia.com', resource: 'dpuclusters', namespace, name, what: `DPUCluster ${namespace}/${name}` });
  }
  if (serviceAccountNamespace !== own) {
    references.push({
      ...targetNamespacesResource, namespace, name: serviceAccountNamespace,
      what: `namespace ${serviceAccountNamespace} of DPUCluster ${namespace}/${name}`,
    });
  }
  return references;
}

/** The refusal a scope meets before any grant is asked for: a protected namespace. */
export function protectedRefusal(scope: Scope, protectedNamespaces: readonly string[]): Refusal | undefined {
  if (!isProtectedNamespace(scope.serviceAccountNamespace, protectedNamespaces)) return undefined;
  const where = scope.targetCluster ? `DPUCluster ${scope.targetCluster.namespace}/${scope.targetCluster.name}` : 'the host cluster';
  return { kind: 'protected', namespace: scope.serviceAccountNamespace, where };
}

/** A stable key per reference, so that one sync asks each question once. */
export const referenceKey = (reference: Reference) =>
  [reference.group, reference.resource, reference.namespace, reference.name ?? ''].join('|');

/**
 * The user and groups a request's namespace is checked as: exactly what the admission
 * policy's authorizer.serviceAccount(namespace, name) carries, so that a grant passes at
 * sync if and only if it passes at apply (no system:authenticated).
 */
export function requesterOf(namespace: string): { user: string; groups: string[] } {
  return {
    user: `system:serviceaccount:${namespace}:${requesterServiceAccountName}`,
    groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`],
  };
}

export function refusalMessage(requestNamespace: string, refusal: Refusal): string {
  if (refusal.kind === 'protected') {
    return `namespace ${refusal.namespace} of ${refusal.where} is protected: no ServiceAccount is made or used there `
      + '(kube-* and PROTECTED_NAMESPACES); what was issued for this request there is revoked';
  }
  const { reference } = refusal;
  const target = `${reference.resource}${reference.name ? `/${reference.name}` : ''}`;
  const role = reference.resource === targetNamespacesResource.resource
    ? `a Role with resourceNames [${reference.name ?? ''}], or ClusterRole dpu-credential-target-namespaces for all of them`
    : 'e.g. ClusterRole dpu-credential-user';
  return `namespace ${requestNamespace} may not use ${reference.what}: it needs a grant there, a RoleBinding in namespace `
    + `${reference.namespace} that gives verb ${grantVerb} on ${target} (${role}) to group system:serviceaccounts:${requestNamespace}`;
}
