// What the hooks share: the clusters, the clock, the log, and finding the cluster a
// request (or an earlier version of it) points at.
import type { DpuClusterObject, ServiceAccountEntry } from '../api.js';
import { namespacedName, parseNamespacedName, type NamespacedName } from '../credential/names.js';
import { defaultPolicy, type Policy } from '../credential/policy.js';
import type { ValidSpec } from '../credential/validate.js';
import type { Logger } from '../log.js';
import { dpuClusterRelatedKey, objectKey, type SyncRequest } from '../metacontroller.js';
import type { CallClusters, CallTarget } from './bound-clusters.js';
import type { ClusterAccess } from './cluster-access.js';

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
export function knownDpuCluster(host: Pick<CallClusters['host'], 'cachedDpuCluster'>, { namespace, name }: NamespacedName,
  related: SyncRequest['related']): DpuClusterObject | undefined {
  return related?.[dpuClusterRelatedKey]?.[objectKey(namespace, name)] ?? host.cachedDpuCluster(namespace, name);
}

/**
 * A DPUCluster as a sync sees it, cheapest first: knownDpuCluster, else a GET, which catches
 * one made a moment ago that the watch has not brought yet. Undefined only when the GET says 404.
 */
async function findDpuCluster(host: CallClusters['host'], namespace: string, name: string, related: SyncRequest['related']):
  Promise<DpuClusterObject | undefined> {
  return knownDpuCluster(host, { namespace, name }, related) ?? await host.readDpuCluster(namespace, name);
}

/** The target cluster of a valid spec: the host, or the DPUCluster it names (findDpuCluster). */
export async function resolveTargetCluster(spec: ValidSpec, related: SyncRequest['related'], clusters: CallClusters): Promise<CallTarget> {
  if (!spec.targetCluster) return clusters.host.target;
  const { namespace, name } = spec.targetCluster;
  const dpuCluster = await findDpuCluster(clusters.host, namespace, name, related);
  if (!dpuCluster || dpuCluster.metadata?.deletionTimestamp) throw new TargetClusterGoneError(namespacedName(namespace, name));
  return clusters.forDpuCluster(dpuCluster);
}

/** Where a recorded ServiceAccount lives; no cluster: gone, and `forget` names the DPUCluster whose cached client goes. */
export interface Whereabouts {
  cluster?: CallTarget;
  forget?: string;
}

/**
 * The cluster a recorded ServiceAccount lives in: the host, or the DPUCluster of that name when it
 * is the same cluster. A DPUCluster deleted and recreated under the same name (a backup restore, a
 * GitOps re-sync) has a new UID: it is the same cluster when it reaches the same API server (the
 * entry's clusterID: URL and CA), and what was made there is still there.
 */
export async function clusterOf(clusters: CallClusters, previous: ServiceAccountEntry, related?: SyncRequest['related']): Promise<Whereabouts> {
  if (!previous.targetCluster) return { cluster: clusters.host.target };
  const { namespace, name } = parseNamespacedName(previous.targetCluster);
  const dpuCluster = await findDpuCluster(clusters.host, namespace, name, related);
  if (!dpuCluster) return { forget: previous.targetCluster };
  // A status without the UID (written by older DPF releases, or by hand) is taken at its word.
  if (!previous.targetClusterUID || dpuCluster.metadata?.uid === previous.targetClusterUID) return { cluster: await clusters.forDpuCluster(dpuCluster) };
  // Same name, new UID, and no clusterID to compare (an older status): taken as another cluster, as before.
  if (!previous.clusterID) return {};
  const recreated = await clusters.forDpuCluster(dpuCluster);
  return recreated.id === previous.clusterID ? { cluster: recreated } : {};
}
