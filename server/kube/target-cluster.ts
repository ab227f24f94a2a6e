// One cluster the webhook makes ServiceAccounts, anchors and tokens in (a DPUCluster's, or
// the host itself): its endpoint, its client, and its ServiceAccount cache, which only this
// object starts and closes.
import type { ClusterEndpoint } from '../credential/render.js';
import type { Logger } from '../log.js';
import type { Removal } from '../credential/removal.js';
import type { ClusterConnection } from './connection.js';
import type { NamespacedName } from '../credential/names.js';
import { KubeRestClient, maxTargetResponseBytes, type Deadline } from './rest.js';
import { ServiceAccountCache } from './service-account-cache.js';
import { deleteManagedServiceAccount, ensureServiceAccount, type EnsuredServiceAccount } from './service-accounts.js';
import { createAnchor, deleteAnchor, readAnchor, revokeAnchor, type Anchor, type AnchorOptions, type AnchorState } from './token-anchors.js';
import { requestToken, type MintedToken } from './tokens.js';

export interface ClusterOptions {
  timeoutMs: number;
  /** Counts API calls by cluster kind (metrics). */
  observeApiCall?: (cluster: 'host' | 'target', method: string, statusCode: number) => void;
  /** Server written to outputs for the host cluster (HOST_CLUSTER_SERVER). */
  hostClusterServer?: string;
  /** Milliseconds since the epoch; tests pass a clock they can move. */
  now?: () => number;
  /** A target unused this long is closed (IDLE_TARGET_CLOSE_MS); default idleTargetCloseMs. */
  idleCloseMs?: number;
  /** Where a watch cache reports that it stopped. */
  log?: Logger;
}

/** A pooled client whose calls are counted under `kind`. */
export function createClusterClient(connection: ClusterConnection, options: ClusterOptions, kind: 'host' | 'target'): KubeRestClient {
  const observe = options.observeApiCall;
  return new KubeRestClient(connection, {
    timeoutMs: options.timeoutMs, ...(observe ? { observe: (method, code) => observe(kind, method, code) } : {}),
    ...(kind === 'target' ? { maxResponseBytes: maxTargetResponseBytes } : {}),
  });
}

export class TargetCluster {
  /** Started by the first ensureServiceAccount: a cluster nobody makes ServiceAccounts in is not watched. */
  private serviceAccountCache: ServiceAccountCache | undefined;

  constructor(
    /** "namespace/name" of the DPUCluster; '' for the host cluster. */
    readonly ref: string,
    readonly uid: string,
    /** Which API server it is (clusterIdOf its endpoint): references differ, servers may not. */
    readonly id: string,
    readonly endpoint: ClusterEndpoint,
    readonly client: KubeRestClient,
    private readonly log?: Logger,
  ) {}

  ensureServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName, deadline: Deadline): Promise<EnsuredServiceAccount> {
    this.serviceAccountCache ??= new ServiceAccountCache(this.client, this.log);
    return ensureServiceAccount(this.client.within(deadline), account, request, this.serviceAccountCache);
  }

  /** The ServiceAccount watch, once an ensureServiceAccount has started it (tests wait on it). */
  get serviceAccounts(): ServiceAccountCache | undefined {
    return this.serviceAccountCache;
  }

  /** A cache not started yet has nothing to forget: it lists afresh when it starts. */
  deleteServiceAccount(account: NamespacedName & { uid?: string }, request: NamespacedName, deadline: Deadline): Promise<Removal> {
    return deleteManagedServiceAccount(this.client.within(deadline), account, request, this.serviceAccountCache);
  }

  createAnchor(serviceAccount: NamespacedName & { uid: string }, request: NamespacedName, deadline: Deadline, options?: AnchorOptions): Promise<Anchor> {
    return createAnchor(this.client.within(deadline), serviceAccount, request, options);
  }

  readAnchor(namespace: string, name: string, request: NamespacedName, deadline: Deadline): Promise<AnchorState | undefined> {
    return readAnchor(this.client.within(deadline), namespace, name, request);
  }

  revokeAnchor(namespace: string, anchor: Anchor, deadline: Deadline): Promise<void> {
    return revokeAnchor(this.client.within(deadline), namespace, anchor);
  }

  deleteAnchor(namespace: string, name: string, request: NamespacedName, serviceAccountName: string, deadline: Deadline,
    madeWithUid?: string): Promise<Removal> {
    return deleteAnchor(this.client.within(deadline), namespace, name, request, serviceAccountName, madeWithUid);
  }

  requestToken(account: NamespacedName, expirationSeconds: number | undefined, anchor: Anchor, deadline: Deadline): Promise<MintedToken> {
    return requestToken(this.client.within(deadline), account.namespace, account.name, expirationSeconds, anchor);
  }

  close(): void {
    this.serviceAccountCache?.close();
    this.client.close();
  }
}
