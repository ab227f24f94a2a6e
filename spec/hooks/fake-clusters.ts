// An in-memory ClusterAccess for the phase tests: ServiceAccounts, anchors and tokens kept
// in maps, every call recorded, and any call made to fail with the error a test names.
// It answers what the hooks ask through server/hooks/cluster-access.ts, nothing more: what
// a real API server does (labels, preconditions, watch caches) is tested end to end.
import type { DpuClusterObject, SecretObject } from '../../server/api.js';
import type { ClusterEndpoint } from '../../server/credential/render.js';
import { planRemoval, type Removal } from '../../server/credential/removal.js';
import type { NamespacedName } from '../../server/credential/names.js';
import type { ClusterAccess, HostAccess, TargetAccess } from '../../server/hooks/cluster-access.js';
import { KubeApiError, type Deadline } from '../../server/kube/rest.js';
import { ServiceAccountInUseError, type EnsuredServiceAccount } from '../../server/kube/service-accounts.js';
import type { Anchor, AnchorOptions, AnchorState } from '../../server/kube/token-anchors.js';
import type { MintedToken } from '../../server/kube/tokens.js';

type TargetCall = 'ensureServiceAccount' | 'deleteServiceAccount' | 'createAnchor' | 'readAnchor' | 'revokeAnchor' | 'deleteAnchor' | 'requestToken';
type HostCall = 'readSecret' | 'readSecretMetadata' | 'readDpuCluster' | 'cachedDpuCluster' | 'isAllowed' | 'forDpuCluster';

/** A JWT-shaped token with the claims the hooks read (no signature: nothing verifies it here). */
export function fakeToken(claims: { jti: string; serviceAccountUid: string; anchor: string; anchorUid?: string }): string {
  const secret = { name: claims.anchor, ...(claims.anchorUid ? { uid: claims.anchorUid } : {}) };
  const payload = { jti: claims.jti, 'kubernetes.io': { serviceaccount: { uid: claims.serviceAccountUid }, secret } };
  return `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;
}

export class FakeTarget implements TargetAccess {
  readonly endpoint: ClusterEndpoint;
  /** "namespace/name" → UID and the request ("namespace/name") its labels name ('' once a test removed them). */
  readonly serviceAccounts = new Map<string, { uid: string; madeFor: string }>();
  /**
   * "namespace/name" of the anchors that exist → UID, the request their labels name ('' once a test
   * removed them), when it was made (the clock's now), whether for a forced rotation.
   */
  readonly anchors = new Map<string, { uid: string; madeFor: string } & Omit<AnchorState, 'name' | 'ours'>>();
  readonly calls: TargetCall[] = [];
  /** The error each call throws until cleared. */
  readonly failing = new Map<TargetCall, Error>();
  /** Overrides the UID a minted token names (a ServiceAccount replaced meanwhile). */
  mintedForUid: string | undefined;
  private counter = 0;

  /** `uid`: the DPUCluster's, which changes when it is recreated (recreateDpuCluster). */
  constructor(readonly ref: string, public uid: string, readonly id: string, private readonly now: () => Date) {
    this.endpoint = { clusterName: ref ? ref.replace('/', '-') : 'incluster', server: `https://${id}.example:6443`, caPem: 'CA' };
  }

  private call(name: TargetCall): void {
    this.calls.push(name);
    const error = this.failing.get(name);
    if (error) throw error;
  }

  /** As kube/service-accounts.ts: labelled for another request, or stripped and not of the recorded UID, it is refused. */
  async ensureServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName): Promise<EnsuredServiceAccount> {
    this.call('ensureServiceAccount');
    const key = `${account.namespace}/${account.name}`;
    const existing = this.serviceAccounts.get(key);
    const requestRef = `${request.namespace}/${request.name}`;
    if (existing?.madeFor === requestRef) return { uid: existing.uid, created: false };
    if (existing) {
      if (existing.uid !== account.uid) throw new ServiceAccountInUseError(account);
      existing.madeFor = requestRef;
      return { uid: existing.uid, created: false, tampered: 'relabelled' };
    }
    const uid = `sa-uid-${account.name}`;
    this.serviceAccounts.set(key, { uid, madeFor: `${request.namespace}/${request.name}` });
    return { uid, created: true };
  }

  async deleteServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName): Promise<Removal> {
    this.call('deleteServiceAccount');
    return this.remove(this.serviceAccounts, `${account.namespace}/${account.name}`, request, account.uid);
  }

  /** What the target holds of each anchor (the same entries as `anchors`). */
  get anchorStates(): ReadonlyMap<string, Omit<AnchorState, 'name' | 'ours'>> {
    return this.anchors;
  }

  async createAnchor(serviceAccount: NamespacedName & { uid: string }, request: NamespacedName, _deadline: unknown,
    options: AnchorOptions = {}): Promise<Anchor> {
    this.call('createAnchor');
    // Without a name, names unique across clusters, as generateName and the API server make them.
    const name = options.name ?? `${serviceAccount.name}-token-${this.id}-${this.counter + 1}`;
    const key = `${serviceAccount.namespace}/${name}`;
    if (this.anchors.has(key)) throw new KubeApiError(409, 'AlreadyExists', `secrets "${name}" already exists`);
    const uid = `anchor-uid-${this.id}-${++this.counter}`;
    this.anchors.set(key, { uid, madeFor: `${request.namespace}/${request.name}`, createdAt: this.now(), forcedRotation: options.forcedRotation === true });
    return { name, uid };
  }

  async readAnchor(namespace: string, name: string, request: NamespacedName): Promise<AnchorState | undefined> {
    this.call('readAnchor');
    const found = this.anchors.get(`${namespace}/${name}`);
    if (!found) return undefined;
    const { madeFor, ...state } = found;
    return { name, ours: madeFor === `${request.namespace}/${request.name}`, ...state };
  }

  async revokeAnchor(namespace: string, anchor: Anchor): Promise<void> {
    this.call('revokeAnchor');
    if (this.anchors.get(`${namespace}/${anchor.name}`)?.uid !== anchor.uid) return;
    this.anchors.delete(`${namespace}/${anchor.name}`);
  }

  async deleteAnchor(namespace: string, name: string, request: NamespacedName, _serviceAccountName: string, _deadline: Deadline,
    madeWithUid?: string): Promise<Removal> {
    this.call('deleteAnchor');
    return this.remove(this.anchors, `${namespace}/${name}`, request, madeWithUid);
  }

  /** What the API server and kube/ do: the rule of credential/removal.ts on what the map holds. */
  private remove(objects: Map<string, { uid: string; madeFor: string }>, key: string, request: NamespacedName, recordedUid?: string): Removal {
    const found = objects.get(key);
    const plan = planRemoval(found && { uid: found.uid, ofOurKind: true, labelledOurs: found.madeFor === `${request.namespace}/${request.name}` },
      recordedUid);
    if (plan.delete) objects.delete(key);
    return plan.as;
  }

  async requestToken(account: NamespacedName, expirationSeconds: number | undefined, anchor: Anchor): Promise<MintedToken> {
    this.call('requestToken');
    const seconds = expirationSeconds ?? 3600;
    const serviceAccountUid = this.mintedForUid ?? this.serviceAccounts.get(`${account.namespace}/${account.name}`)?.uid ?? '';
    return {
      token: fakeToken({ jti: `jti-${++this.counter}`, serviceAccountUid, anchor: anchor.name, anchorUid: anchor.uid }),
      expiresAt: new Date(this.now().getTime() + seconds * 1_000),
      expirationSeconds: seconds,
    };
  }
}

export class FakeHost implements HostAccess {
  readonly target: FakeTarget;
  /** Secrets of the host cluster, by "namespace/name" (the output Secrets a test puts there). */
  readonly secrets = new Map<string, SecretObject>();
  /** The DPUClusters the host's API server holds (what readDpuCluster answers). */
  readonly dpuClusters = new Map<string, DpuClusterObject>();
  /** What the webhook's DPUCluster watch holds (cachedDpuCluster): it may lag dpuClusters, as a watch does. */
  readonly watchedDpuClusters = new Map<string, DpuClusterObject>();
  /** Grants refused: "resource/namespace/name" (name '' for a whole namespace). */
  readonly refused = new Set<string>();
  readonly calls: HostCall[] = [];
  readonly failing = new Map<HostCall, Error>();

  constructor(now: () => Date) {
    this.target = new FakeTarget('', '', 'host', now);
  }

  call(name: HostCall): void {
    this.calls.push(name);
    const error = this.failing.get(name);
    if (error) throw error;
  }

  async readSecret(namespace: string, name: string): Promise<SecretObject | undefined> {
    this.call('readSecret');
    return this.secrets.get(`${namespace}/${name}`);
  }

  async readSecretMetadata(namespace: string, name: string): Promise<SecretObject | undefined> {
    this.call('readSecretMetadata');
    const secret = this.secrets.get(`${namespace}/${name}`);
    return secret ? { metadata: secret.metadata ?? {} } : undefined;
  }

  async readDpuCluster(namespace: string, name: string): Promise<DpuClusterObject | undefined> {
    this.call('readDpuCluster');
    return this.dpuClusters.get(`${namespace}/${name}`);
  }

  cachedDpuCluster(namespace: string, name: string): DpuClusterObject | undefined {
    this.call('cachedDpuCluster');
    return this.watchedDpuClusters.get(`${namespace}/${name}`);
  }

  async isAllowed(_requester: unknown, _verb: string, resource: { resource: string; namespace: string; name?: string }): Promise<boolean> {
    this.call('isAllowed');
    return !this.refused.has(`${resource.resource}/${resource.namespace}/${resource.name ?? ''}`);
  }
}

export class FakeClusters implements ClusterAccess {
  readonly host: FakeHost;
  /** The target of each DPUCluster ("namespace/name"), made on first use. */
  readonly targets = new Map<string, FakeTarget>();
  readonly forgotten: string[] = [];

  constructor(private readonly now: () => Date) {
    this.host = new FakeHost(now);
  }

  /** Adds a DPUCluster to the host (and, unless `watched` is false, to what the watch holds) and returns its target. */
  addDpuCluster(namespace: string, name: string, uid = `${name}-uid`, options: { watched?: boolean } = {}): FakeTarget {
    const ref = `${namespace}/${name}`;
    const dpuCluster: DpuClusterObject = { apiVersion: 'provisioning.dpu.nvidia.com/v1alpha1', kind: 'DPUCluster',
      metadata: { namespace, name, uid }, spec: { kubeconfig: `${name}-admin-kubeconfig` } };
    this.host.dpuClusters.set(ref, dpuCluster);
    if (options.watched !== false) this.host.watchedDpuClusters.set(ref, dpuCluster);
    const target = new FakeTarget(ref, uid, `cluster-${name}`, this.now);
    this.targets.set(ref, target);
    return target;
  }

  /**
   * Deletes a DPUCluster and makes it again under the same name: a new UID (a backup restore, a GitOps
   * re-sync). `sameServer`: its kubeconfig reaches the same API server, which still holds what was made.
   */
  recreateDpuCluster(namespace: string, name: string, uid: string, options: { sameServer: boolean }): FakeTarget {
    const ref = `${namespace}/${name}`;
    const dpuCluster: DpuClusterObject = { ...this.host.dpuClusters.get(ref), metadata: { namespace, name, uid } };
    this.host.dpuClusters.set(ref, dpuCluster);
    this.host.watchedDpuClusters.set(ref, dpuCluster);
    const previous = this.targets.get(ref);
    if (options.sameServer && previous) {
      previous.uid = uid;
      return previous;
    }
    const target = new FakeTarget(ref, uid, `cluster-${name}-${uid}`, this.now);
    this.targets.set(ref, target);
    return target;
  }

  /** Deletes a DPUCluster from the host and, once the watch has seen it, from the watch's cache. */
  removeDpuCluster(namespace: string, name: string): void {
    this.host.dpuClusters.delete(`${namespace}/${name}`);
    this.host.watchedDpuClusters.delete(`${namespace}/${name}`);
  }

  async forDpuCluster(dpuCluster: DpuClusterObject): Promise<TargetAccess> {
    this.host.call('forDpuCluster');
    const ref = `${dpuCluster.metadata?.namespace}/${dpuCluster.metadata?.name}`;
    const target = this.targets.get(ref);
    if (!target) throw new Error(`the test made no target for ${ref}`);
    return target;
  }

  forget(ref: string): void {
    this.forgotten.push(ref);
  }
}
