// The clusters as one hook call uses them: the hook's deadline is bound here, once, so that no
// phase passes it by hand and none can forget it (an answer later than the deadline is dropped
// by Metacontroller, with whatever token it carried).
import type { DpuClusterObject, SecretObject } from '../api.js';
import type { NamespacedName } from '../credential/names.js';
import type { Removal } from '../credential/removal.js';
import type { Deadline } from '../kube/rest.js';
import type { EnsuredServiceAccount } from '../kube/service-accounts.js';
import type { Anchor, AnchorOptions, AnchorState } from '../kube/token-anchors.js';
import type { MintedToken } from '../kube/tokens.js';
import type { ClusterAccess, TargetAccess } from './cluster-access.js';

/** TargetAccess with this call's deadline (cluster-access.ts documents each call). */
export interface CallTarget {
  readonly ref: string;
  readonly uid: string;
  readonly id: string;
  readonly endpoint: TargetAccess['endpoint'];
  ensureServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName): Promise<EnsuredServiceAccount>;
  deleteServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName): Promise<Removal>;
  createAnchor(serviceAccount: NamespacedName & { uid: string }, request: NamespacedName, options?: AnchorOptions): Promise<Anchor>;
  readAnchor(namespace: string, name: string, request: NamespacedName): Promise<AnchorState | undefined>;
  revokeAnchor(namespace: string, anchor: Anchor): Promise<void>;
  deleteAnchor(namespace: string, name: string, request: NamespacedName, serviceAccountName: string, madeWithUid?: string): Promise<Removal>;
  requestToken(account: NamespacedName, expirationSeconds: number | undefined, anchor: Anchor): Promise<MintedToken>;
}

/** ClusterAccess with this call's deadline. Forgetting a cached cluster is not here: only the effects do it (effects.ts). */
export interface CallClusters {
  readonly host: {
    readonly target: CallTarget;
    readSecret(namespace: string, name: string): Promise<SecretObject | undefined>;
    readSecretMetadata(namespace: string, name: string): Promise<SecretObject | undefined>;
    readDpuCluster(namespace: string, name: string): Promise<DpuClusterObject | undefined>;
    cachedDpuCluster(namespace: string, name: string): DpuClusterObject | undefined;
    isAllowed(requester: { user: string; groups: string[] }, verb: string,
      resource: { group: string; resource: string; namespace: string; name?: string }): Promise<boolean>;
  };
  forDpuCluster(dpuCluster: DpuClusterObject): Promise<CallTarget>;
}

function boundTarget(target: TargetAccess, deadline: Deadline): CallTarget {
  return {
    ref: target.ref,
    uid: target.uid,
    id: target.id,
    endpoint: target.endpoint,
    ensureServiceAccount: (account, request) => target.ensureServiceAccount(account, request, deadline),
    deleteServiceAccount: (account, request) => target.deleteServiceAccount(account, request, deadline),
    createAnchor: (serviceAccount, request, options) => target.createAnchor(serviceAccount, request, deadline, options),
    readAnchor: (namespace, name, request) => target.readAnchor(namespace, name, request, deadline),
    revokeAnchor: (namespace, anchor) => target.revokeAnchor(namespace, anchor, deadline),
    deleteAnchor: (namespace, name, request, serviceAccountName, madeWithUid) =>
      target.deleteAnchor(namespace, name, request, serviceAccountName, deadline, madeWithUid),
    requestToken: (account, expirationSeconds, anchor) => target.requestToken(account, expirationSeconds, anchor, deadline),
  };
}

export function bindDeadline(clusters: ClusterAccess, deadline: Deadline): CallClusters {
  const { host } = clusters;
  return {
    host: {
      target: boundTarget(host.target, deadline),
      readSecret: (namespace, name) => host.readSecret(namespace, name, deadline),
      readSecretMetadata: (namespace, name) => host.readSecretMetadata(namespace, name, deadline),
      readDpuCluster: (namespace, name) => host.readDpuCluster(namespace, name, deadline),
      cachedDpuCluster: (namespace, name) => host.cachedDpuCluster(namespace, name),
      isAllowed: (requester, verb, resource) => host.isAllowed(requester, verb, resource, deadline),
    },
    forDpuCluster: async (dpuCluster) => boundTarget(await clusters.forDpuCluster(dpuCluster, deadline), deadline),
  };
}
