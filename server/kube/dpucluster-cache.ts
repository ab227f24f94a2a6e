// A watch-backed cache of the host cluster's DPUClusters: one cluster-wide list and watch,
// so a sync reads its DPUCluster without an API call, and Metacontroller need not follow
// DPUClusters for us (relatedResources re-synced every request on a cluster at each of its
// status updates: docs/performance.md, "One DPUCluster update"). It holds only what a sync
// reads (identity, spec.kubeconfig, deletionTimestamp), never status.
//
// It may lag the API server by the watch's latency; the CompositeController's periodic
// resync (resyncPeriodSeconds) bounds how late a deleted or recreated DPUCluster is acted on.
// It never says "gone": a DPUCluster it does not hold (not synced yet, the watch down, or
// made a moment ago) is read with a GET by the caller, and only a 404 from that means gone.
//
// The host's API server is trusted more than a target's, but the cache is bounded all the
// same: fields beyond their bounds make an object not held (the caller GETs it), and past
// maxCachedDpuClusters the cache stops and syncs read the API.
import type { DpuClusterObject } from '../api.js';
import type { Logger } from '../log.js';
import type { KubeRestClient } from './rest.js';
import { bounded, maxNameLength, WatchedCache } from './watched-cache.js';

/** Past this many DPUClusters in the host, the cache stops and syncs read the API. */
export const maxCachedDpuClusters = 100_000;
/** UIDs, resourceVersions and timestamps are short; this leaves room without holding megabytes. */
const maxShortFieldLength = 128;

export const dpuClustersPath = '/apis/provisioning.dpu.nvidia.com/v1alpha1/dpuclusters';

/** What a sync reads of a DPUCluster (context.ts, clusters.ts): the rest is not kept. */
function trim(cluster: DpuClusterObject): DpuClusterObject | undefined {
  const { namespace, name, uid, resourceVersion, deletionTimestamp } = cluster.metadata ?? {};
  const kubeconfig = cluster.spec?.kubeconfig;
  const fits = (value: unknown, max: number) => value === undefined || bounded(value, max) !== undefined;
  if (!fits(uid, maxShortFieldLength) || !fits(resourceVersion, maxShortFieldLength) || !fits(deletionTimestamp, maxShortFieldLength)
    || !fits(kubeconfig, maxNameLength) || !fits(cluster.apiVersion, maxShortFieldLength) || !fits(cluster.kind, maxShortFieldLength)) return undefined;
  return {
    apiVersion: cluster.apiVersion ?? 'provisioning.dpu.nvidia.com/v1alpha1',
    kind: cluster.kind ?? 'DPUCluster',
    metadata: { namespace, name, uid, resourceVersion, ...(deletionTimestamp ? { deletionTimestamp } : {}) },
    spec: kubeconfig === undefined ? {} : { kubeconfig },
  };
}

export class DpuClusterCache extends WatchedCache<DpuClusterObject> {
  constructor(client: KubeRestClient, log?: Logger, maxObjects = maxCachedDpuClusters) {
    super(client, dpuClustersPath, trim, { maxObjects, ...(log ? { log } : {}) });
  }
}
