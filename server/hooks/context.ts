// What the hooks share: the clusters, the clock, the log, and finding the cluster a
// request (or an earlier version of it) points at.
import type { DpuClusterObject, ServiceAccountEntry } from '../api.js';
import { namespacedName, parseNamespacedName, type NamespacedName } from '../credential/names.js';
import { defaultPolicy, type Policy } from '../credential/policy.js';
import type { ValidSpec } from '../credential/validate.js';
import type { Deadline } from '../kube/rest.js';
import type { Logger } from '../log.js';
import { dpuClusterRelatedKey, objectKey, type SyncRequest } from '../metacontroller.js';
import type { ClusterAccess, HostAccess, TargetAccess } from './cluster-access.js';

export interface HookContext {
  clusters: ClusterAccess;
  now: () => Date;
  /** For app.ts, which logs every hook call. */
  log: Logger;
  /** What requests may ask for; absent: the defaults. */
  policy?: Policy;
}

export const policyOf = (context: HookContext): Policy => context.policy ?? defaultPolicy;

/** The DPUCluster is absent or being deleted: its credentials point nowhere. */
export class TargetClusterGoneError extends Error {
  override name = 'TargetClusterGoneError';
  /** "namespace/name" of the DPUCluster that is gone. */
  constructor(readonly clusterRef: string) {
    super(`waiting for DPUCluster ${clusterRef}`);
  }
}

/**
 * A DPUCluster known without a call: the hook request's related objects (sent only by a
 * CompositeController of 0.3.x or earlier, whose customize hook named it: during a rollout),
 * else the webhook's own DPUCluster watch. Undefined does not mean gone (findDpuCluster).
 */
export function knownDpuCluster(host: HostAccess, { namespace, name }: NamespacedName, related: SyncRequest['related']):
  DpuClusterObject | undefined {
  return related?.[dpuClusterRelatedKey]?.[objectKey(namespace, name)] ?? host.cachedDpuCluster(namespace, name);
}

/**
 * A DPUCluster as a sync sees it, cheapest first: knownDpuCluster, else a GET, which catches
 * one made a moment ago that the watch has not brought yet. Undefined only when the GET says 404.
 */
export async function findDpuCluster(host: HostAccess, namespace: string, name: string, related: SyncRequest['related'],
  deadline: Deadline): Promise<DpuClusterObject | undefined> {
  return knownDpuCluster(host, { namespace, name }, related) ?? await host.readDpuCluster(namespace, name, deadline);
}

/** The target cluster of a valid spec: the host, or the DPUCluster it names (findDpuCluster). */
export async function resolveTargetCluster(spec: ValidSpec, related: SyncRequest['related'], context: HookContext, deadline: Deadline): Promise<TargetAccess> {
  if (!spec.targetCluster) return context.clusters.host.target;
  const { namespace, name } = spec.targetCluster;
  const dpuCluster = await findDpuCluster(context.clusters.host, namespace, name, related, deadline);
  if (!dpuCluster || dpuCluster.metadata?.deletionTimestamp) {
    context.clusters.forget(namespacedName(namespace, name));
    throw new TargetClusterGoneError(namespacedName(namespace, name));
  }
  return context.clusters.forDpuCluster(dpuCluster, deadline);
}

/** The namespace and name of a recorded ServiceAccount. */
export const serviceAccountRefOf = (entry: ServiceAccountEntry): NamespacedName => parseNamespacedName(entry.serviceAccount);

/**
 * The cluster a recorded ServiceAccount lives in: the host, or the DPUCluster of that name when it
 * is the same cluster; undefined when gone. A DPUCluster deleted and recreated under the same name
 * (a backup restore, a GitOps re-sync) has a new UID: it is the same cluster when it reaches the same
 * API server (the entry's clusterID: URL and CA), and what was made there is still there.
 */
export async function clusterOf(clusters: ClusterAccess, previous: ServiceAccountEntry, deadline: Deadline,
  related?: SyncRequest['related']): Promise<TargetAccess | undefined> {
  if (!previous.targetCluster) return clusters.host.target;
  const { namespace, name } = parseNamespacedName(previous.targetCluster);
  const dpuCluster = await findDpuCluster(clusters.host, namespace, name, related, deadline);
  if (!dpuCluster) {
    clusters.forget(previous.targetCluster);
    return undefined;
  }
  // A status without the UID (written by older DPF releases, or by hand) is taken at its word.
  if (!previous.targetClusterUID || dpuCluster.metadata?.uid === previous.targetClusterUID) return clusters.forDpuCluster(dpuCluster, deadline);
  // Same name, new UID, and no clusterID to compare (an older status): taken as another cluster, as before.
  if (!previous.clusterID) return undefined;
  const recreated = await clusters.forDpuCluster(dpuCluster, deadline);
  return recreated.id === previous.clusterID ? recreated : undefined;
}
