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
import type { DpuClusterObject } from '../api.js';
import type { KubeRestClient } from './rest.js';
import { WatchedCache } from './watched-cache.js';

export const dpuClustersPath = '/apis/provisioning.dpu.nvidia.com/v1alpha1/dpuclusters';

/** What a sync reads of a DPUCluster (context.ts, clusters.ts): the rest is not kept. */
function trim(cluster: DpuClusterObject): DpuClusterObject {
  const { namespace, name, uid, resourceVersion, deletionTimestamp } = cluster.metadata ?? {};
  const kubeconfig = cluster.spec?.kubeconfig;
  return {
    apiVersion: cluster.apiVersion ?? 'provisioning.dpu.nvidia.com/v1alpha1',
    kind: cluster.kind ?? 'DPUCluster',
    metadata: { namespace, name, uid, resourceVersion, ...(deletionTimestamp ? { deletionTimestamp } : {}) },
    spec: kubeconfig === undefined ? {} : { kubeconfig },
  };
}

export class DpuClusterCache extends WatchedCache<DpuClusterObject> {
  constructor(client: KubeRestClient) {
    super(client, dpuClustersPath, trim);
  }
}
