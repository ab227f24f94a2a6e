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
import type { ClusterAccess, HostAccess, TargetAccess } from './cluster-access.js';

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

type Requester = { user: string; groups: string[] };
type GrantResource = { group: string; resource: string; namespace: string; name?: string };

/** HostAccess with this call's deadline. */
export interface CallHost {
  readonly target: CallTarget;
  readSecret(namespace: string, name: string): Promise<SecretObject | undefined>;
  readSecretMetadata(namespace: string, name: string): Promise<SecretObject | undefined>;
  readDpuCluster(namespace: string, name: string): Promise<DpuClusterObject | undefined>;
  cachedDpuCluster(namespace: string, name: string): DpuClusterObject | undefined;
  isAllowed(requester: Requester, verb: string, resource: GrantResource): Promise<boolean>;
}

/** ClusterAccess with this call's deadline. Forgetting a cached cluster is not here: only the effects do it (effects.ts). */
export interface CallClusters {
  readonly host: CallHost;
  forDpuCluster(dpuCluster: DpuClusterObject): Promise<CallTarget>;
}

/** One object per target and call, its methods on the prototype: the reuse path makes one per sync. */
class BoundTarget implements CallTarget {
  readonly ref: string;
  readonly uid: string;
  readonly id: string;
  readonly endpoint: TargetAccess['endpoint'];

  constructor(private readonly target: TargetAccess, private readonly deadline: Deadline) {
    ({ ref: this.ref, uid: this.uid, id: this.id, endpoint: this.endpoint } = target);
  }

  ensureServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName): Promise<EnsuredServiceAccount> {
    return this.target.ensureServiceAccount(account, request, this.deadline);
  }

  deleteServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName): Promise<Removal> {
    return this.target.deleteServiceAccount(account, request, this.deadline);
  }

  createAnchor(serviceAccount: NamespacedName & { uid: string }, request: NamespacedName, options?: AnchorOptions): Promise<Anchor> {
    return this.target.createAnchor(serviceAccount, request, this.deadline, options);
  }

  readAnchor(namespace: string, name: string, request: NamespacedName): Promise<AnchorState | undefined> {
    return this.target.readAnchor(namespace, name, request, this.deadline);
  }

  revokeAnchor(namespace: string, anchor: Anchor): Promise<void> {
    return this.target.revokeAnchor(namespace, anchor, this.deadline);
  }

  deleteAnchor(namespace: string, name: string, request: NamespacedName, serviceAccountName: string, madeWithUid?: string): Promise<Removal> {
    return this.target.deleteAnchor(namespace, name, request, serviceAccountName, this.deadline, madeWithUid);
  }

  requestToken(account: NamespacedName, expirationSeconds: number | undefined, anchor: Anchor): Promise<MintedToken> {
    return this.target.requestToken(account, expirationSeconds, anchor, this.deadline);
  }
}

class BoundHost implements CallHost {
  private boundTarget: CallTarget | undefined;

  constructor(private readonly host: HostAccess, private readonly deadline: Deadline) {}

  /** Made when first asked for: a sync on a DPUCluster never uses the host as its target. */
  get target(): CallTarget {
    return this.boundTarget ??= new BoundTarget(this.host.target, this.deadline);
  }

  readSecret(namespace: string, name: string): Promise<SecretObject | undefined> {
    return this.host.readSecret(namespace, name, this.deadline);
  }

  readSecretMetadata(namespace: string, name: string): Promise<SecretObject | undefined> {
    return this.host.readSecretMetadata(namespace, name, this.deadline);
  }

  readDpuCluster(namespace: string, name: string): Promise<DpuClusterObject | undefined> {
    return this.host.readDpuCluster(namespace, name, this.deadline);
  }

  cachedDpuCluster(namespace: string, name: string): DpuClusterObject | undefined {
    return this.host.cachedDpuCluster(namespace, name);
  }

  isAllowed(requester: Requester, verb: string, resource: GrantResource): Promise<boolean> {
    return this.host.isAllowed(requester, verb, resource, this.deadline);
  }
}

export function bindDeadline(clusters: ClusterAccess, deadline: Deadline): CallClusters {
  return {
    host: new BoundHost(clusters.host, deadline),
    forDpuCluster: async (dpuCluster) => new BoundTarget(await clusters.forDpuCluster(dpuCluster, deadline), deadline),
  };
}
