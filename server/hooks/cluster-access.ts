// What the hooks need from the clusters, and nothing more: the host cluster's reads and
// grant checks, and per target cluster the few calls a sync makes. kube/clusters.ts
// implements it on real API servers; the phase tests (spec/hooks/) implement it in memory,
// so every failure branch of a phase can be driven without an API server.
import type { DpuClusterObject, SecretObject } from '../api.js';
import type { ClusterEndpoint } from '../credential/render.js';
import type { Removal } from '../credential/removal.js';
import type { NamespacedName } from '../credential/names.js';
import type { Deadline } from '../kube/rest.js';
import type { EnsuredServiceAccount } from '../kube/service-accounts.js';
import type { Anchor, AnchorOptions, AnchorState } from '../kube/token-anchors.js';
import type { MintedToken } from '../kube/tokens.js';

/** One target cluster: where the ServiceAccounts, anchors and tokens of a request are made. */
export interface TargetAccess {
  /** "namespace/name" of the DPUCluster; '' for the host cluster. */
  readonly ref: string;
  readonly uid: string;
  /** Which API server it is: references differ, servers may not. */
  readonly id: string;
  readonly endpoint: ClusterEndpoint;
  /**
   * Gets or creates the request's ServiceAccount (managed labels checked); its UID, and whether it was made now.
   * `account.uid`: the UID recorded for it; one of that UID that lost its labels is the request's own all the same
   * (`tampered`; its labels restored where the webhook may patch it).
   */
  ensureServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName, deadline: Deadline): Promise<EnsuredServiceAccount>;
  /**
   * Deletes the ServiceAccount made for `request`: the one of `account.uid` whatever its labels say
   * now, or, without a UID, one labelled for `request` (credential/removal.ts says what it comes to).
   */
  deleteServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName, deadline: Deadline): Promise<Removal>;
  /** `options.name`: the anchor's name (one that exists already fails with 409); `forcedRotation`: marks it as a forced rotation's. */
  createAnchor(serviceAccount: NamespacedName & { uid: string }, request: NamespacedName, deadline: Deadline, options?: AnchorOptions): Promise<Anchor>;
  /** The anchor of that name as the target has it (when made, whether for a forced rotation, whether this request's); undefined: none. */
  readAnchor(namespace: string, name: string, request: NamespacedName, deadline: Deadline): Promise<AnchorState | undefined>;
  /** Deletes that anchor if it is still the same object (its UID), revoking its token; gone already is fine. */
  revokeAnchor(namespace: string, anchor: Anchor, deadline: Deadline): Promise<void>;
  /** Deletes an anchor this request made for that ServiceAccount: the one of `madeWithUid` whatever its labels say, else by its labels. */
  deleteAnchor(namespace: string, name: string, request: NamespacedName, serviceAccountName: string, deadline: Deadline,
    madeWithUid?: string): Promise<Removal>;
  requestToken(account: NamespacedName, expirationSeconds: number | undefined, anchor: Anchor, deadline: Deadline): Promise<MintedToken>;
}

/** The host cluster: requests, DPUClusters, output Secrets and the grants live there. */
export interface HostAccess {
  /** The host cluster as a target (requests without targetCluster). */
  readonly target: TargetAccess;
  readSecret(namespace: string, name: string, deadline?: Deadline): Promise<SecretObject | undefined>;
  readSecretMetadata(namespace: string, name: string, deadline?: Deadline): Promise<SecretObject | undefined>;
  /** A live GET: undefined only on 404, the one answer that says a DPUCluster is gone. */
  readDpuCluster(namespace: string, name: string, deadline?: Deadline): Promise<DpuClusterObject | undefined>;
  /**
   * The DPUCluster from the webhook's own watch, without an API call; undefined when the watch
   * cannot tell (not synced, down, or not holding it yet): then readDpuCluster decides.
   */
  cachedDpuCluster(namespace: string, name: string): DpuClusterObject | undefined;
  isAllowed(requester: { user: string; groups: string[] }, verb: string,
    resource: { group: string; resource: string; namespace: string; name?: string }, deadline?: Deadline): Promise<boolean>;
}

export interface ClusterAccess {
  readonly host: HostAccess;
  /** The target behind a DPUCluster (its client cached by its admin kubeconfig). */
  forDpuCluster(dpuCluster: DpuClusterObject, deadline?: Deadline): Promise<TargetAccess>;
  /** Drops what is cached for a DPUCluster ("namespace/name"): gone, or its credentials refused. */
  forget(ref: string): void;
}
