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
import { setTimeout as delay } from 'node:timers/promises';
import type { DpuClusterObject } from '../api.js';
import { KubeApiError, KubeUnreachableError, type KubeRestClient } from './rest.js';

interface DpuClusterList {
  metadata?: { resourceVersion?: string };
  items?: DpuClusterObject[];
}

interface WatchEvent {
  type?: string;
  object?: DpuClusterObject & { code?: number };
}

export const dpuClustersPath = '/apis/provisioning.dpu.nvidia.com/v1alpha1/dpuclusters';
const watchTimeoutSeconds = 300;
/** The API server sends a bookmark about every minute on a quiet watch: silence past this means it is gone. */
const idleTimeoutMs = 90_000;
const retryDelaysMs = [500, 1_000, 2_000, 5_000, 10_000];

const keyOf = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ''}/${name ?? ''}`;
/** Waits, or less when signal aborts (then resolves too: the loop checks the signal). */
const sleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined);

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

export class DpuClusterCache {
  private readonly clusters = new Map<string, DpuClusterObject>();
  private synced = false;
  private readonly stopping = new AbortController();
  /** Called after every list and every event: tests wait on it for what the watch has brought. */
  private readonly listeners = new Set<() => void>();
  /** The bug that stopped the watch loop, if one did. */
  stoppedBy: Error | undefined;

  constructor(private readonly client: KubeRestClient) {
    void this.run();
  }

  /** The DPUCluster as last seen; null when the cache is synced and holds none; undefined when it cannot tell. */
  lookup(namespace: string, name: string): DpuClusterObject | null | undefined {
    if (!this.synced) return undefined;
    return this.clusters.get(keyOf(namespace, name)) ?? null;
  }

  /** DPUClusters cached. */
  get size(): number {
    return this.clusters.size;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /** Resolves once `check` holds, checked now and after each list and watch event (tests: "the watch has brought it"). */
  until(check: (cache: DpuClusterCache) => boolean): Promise<void> {
    if (check(this)) return Promise.resolve();
    return new Promise((resolve) => {
      const listener = () => {
        if (!check(this)) return;
        this.listeners.delete(listener);
        resolve();
      };
      this.listeners.add(listener);
    });
  }

  close(): void {
    this.synced = false;
    this.stopping.abort();
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      try {
        let resourceVersion = await this.list();
        // Watch until the server ends it, then continue from the last version seen. Only a
        // watch that ran its course counts as healthy: one failing at once keeps backing off.
        for (;;) {
          resourceVersion = await this.watchFrom(resourceVersion);
          failures = 0;
          if (this.stopping.signal.aborted) return;
        }
      } catch (error) {
        this.synced = false;
        this.changed();
        if (this.stopping.signal.aborted) return;
        // Neither the server's answer nor the network: a bug here, which a retry would only repeat.
        // The cache stays "unknown" (callers GET), and the error is kept for a reader.
        if (!(error instanceof KubeApiError || error instanceof KubeUnreachableError)) {
          this.stoppedBy = error as Error;
          return;
        }
        // 410 Gone: the version is too old, list again at once. Anything else (the cluster away,
        // or 403 while the RBAC lacks list and watch): list again after a backoff, GETs meanwhile.
        await sleep(error instanceof KubeApiError && error.statusCode === 410 ? 0 : retryDelaysMs[Math.min(failures++, retryDelaysMs.length - 1)]!, this.stopping.signal);
      }
    }
  }

  private async list(): Promise<string> {
    const list = await this.client.request<DpuClusterList>('GET', dpuClustersPath);
    this.clusters.clear();
    for (const cluster of list.items ?? []) this.clusters.set(keyOf(cluster.metadata?.namespace, cluster.metadata?.name), trim(cluster));
    this.synced = true;
    this.changed();
    return list.metadata?.resourceVersion ?? '';
  }

  private async watchFrom(resourceVersion: string): Promise<string> {
    let latest = resourceVersion;
    let gone = false;
    await this.client.watch(
      `${dpuClustersPath}?watch=true&allowWatchBookmarks=true` +
        `&resourceVersion=${encodeURIComponent(resourceVersion)}&timeoutSeconds=${watchTimeoutSeconds}`,
      (raw) => {
        const event = raw as WatchEvent;
        const object = event.object ?? {};
        if (event.type === 'ERROR') {
          gone = object.code === 410;
          return;
        }
        if (object.metadata?.resourceVersion) latest = object.metadata.resourceVersion;
        const key = keyOf(object.metadata?.namespace, object.metadata?.name);
        if (event.type === 'ADDED' || event.type === 'MODIFIED') this.clusters.set(key, trim(object));
        else if (event.type === 'DELETED') this.clusters.delete(key);
        this.changed();
      },
      idleTimeoutMs,
      this.stopping.signal,
    );
    if (gone) throw new KubeApiError(410, 'Expired', 'the watch resourceVersion is too old');
    return latest;
  }
}
