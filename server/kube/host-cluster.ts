// The host cluster: where requests, DPUClusters, output Secrets and grants live. The
// webhook reaches it with its own credentials; it is also the target of requests without
// targetCluster.
import type { DpuClusterObject, SecretObject } from '../api.js';
import type { ClusterEndpoint } from '../credential/render.js';
import type { Logger } from '../log.js';
import { clusterIdOf } from '../credential/service-account-ledger.js';
import { DpuClusterCache } from './dpucluster-cache.js';
import { loadHostConnection, type ClusterConnection } from './connection.js';
import { isNotFound, type Deadline, type KubeRestClient } from './rest.js';
import { createClusterClient, TargetCluster, type ClusterOptions } from './target-cluster.js';

const secretPath = (namespace: string, name: string) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;

export class HostCluster {
  /** Started by the first cachedDpuCluster: a webhook that serves only host-cluster requests watches no DPUClusters. */
  private dpuClusterCache: DpuClusterCache | undefined;

  private constructor(readonly client: KubeRestClient, readonly target: TargetCluster, private readonly log?: Logger) {}

  /** KUBECONFIG, else ~/.kube/config, else the in-cluster config (client-node's order: connection.ts). */
  static fromEnvironment(options: ClusterOptions): HostCluster {
    return HostCluster.fromConfig(loadHostConnection().connection, options);
  }

  /**
   * The endpoint written to host-cluster outputs: HOST_CLUSTER_SERVER, else the connection's
   * server (in a Pod, the kubernetes Service's address); the connection's CA (in a Pod, the
   * mounted ca.crt).
   */
  static fromConfig(connection: ClusterConnection, options: ClusterOptions): HostCluster {
    const client = createClusterClient(connection, options, 'host');
    const endpoint: ClusterEndpoint = {
      clusterName: 'incluster',
      server: options.hostClusterServer ?? client.server,
      caPem: connection.caPem ?? '',
    };
    return new HostCluster(client, new TargetCluster('', '', clusterIdOf(endpoint), endpoint, client, options.log), options.log);
  }

  /** Readiness: the host API server answers (any authenticated identity may read /version). */
  async checkReachable(): Promise<void> {
    await this.client.request('GET', '/version');
  }

  async readSecret(namespace: string, name: string, deadline?: Deadline): Promise<SecretObject | undefined> {
    return this.readOptional(secretPath(namespace, name), deadline);
  }

  /**
   * A Secret's metadata alone (PartialObjectMetadata): enough to tell whose it is, without
   * bringing a Secret that is not this webhook's, data and all, into its memory.
   */
  async readSecretMetadata(namespace: string, name: string, deadline?: Deadline): Promise<SecretObject | undefined> {
    return this.readOptional(secretPath(namespace, name), deadline, 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1');
  }

  async readDpuCluster(namespace: string, name: string, deadline?: Deadline): Promise<DpuClusterObject | undefined> {
    return this.readOptional(`/apis/provisioning.dpu.nvidia.com/v1alpha1/namespaces/${encodeURIComponent(namespace)}/dpuclusters/${encodeURIComponent(name)}`, deadline);
  }

  /**
   * The DPUCluster as the webhook's own watch holds it (no API call); undefined when the watch
   * cannot tell: not synced yet, down, or it holds none by that name (made a moment ago, or
   * gone). The caller then reads it with readDpuCluster, whose 404 alone means gone.
   */
  cachedDpuCluster(namespace: string, name: string): DpuClusterObject | undefined {
    this.dpuClusterCache ??= new DpuClusterCache(this.client, this.log);
    return this.dpuClusterCache.lookup(namespace, name) ?? undefined;
  }

  /** The DPUCluster watch, once a sync has started it (tests wait on it). */
  get dpuClusters(): DpuClusterCache | undefined {
    return this.dpuClusterCache;
  }

  /** Stops the DPUCluster watch and closes the client (shared with `target`). */
  close(): void {
    this.dpuClusterCache?.close();
    this.target.close();
  }

  /** Whether the host cluster's RBAC lets `requester` do `verb` on the resource (a SubjectAccessReview). */
  async isAllowed(requester: { user: string; groups: string[] }, verb: string,
    resource: { group: string; resource: string; namespace: string; name?: string }, deadline?: Deadline): Promise<boolean> {
    const review = await this.client.request<{ status?: { allowed?: boolean } }>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user: requester.user,
        groups: requester.groups,
        resourceAttributes: { verb, group: resource.group, resource: resource.resource, namespace: resource.namespace, ...(resource.name ? { name: resource.name } : {}) },
      },
    }, deadline ? { deadline } : {});
    return review?.status?.allowed === true;
  }

  private async readOptional<T>(path: string, deadline?: Deadline, accept?: string): Promise<T | undefined> {
    try {
      return await this.client.request<T>('GET', path, undefined, { ...(deadline ? { deadline } : {}), ...(accept ? { accept } : {}) });
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
