// The host cluster (where requests, DPUClusters and output Secrets live) and the
// target clusters (where ServiceAccounts and tokens are made), with one cached,
// connection-reusing client per target.
import { KubeConfig } from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DpuClusterObject, SecretObject } from '../api.js';
import type { ClusterEndpoint } from '../credential/render.js';
import { namespacedName } from '../credential/names.js';
import { clusterIdOf } from '../credential/service-account-ledger.js';
import { InvalidKubeconfigError, loadKubeconfig } from './kubeconfig.js';
import { isNotFound, KubeRestClient, type Deadline } from './rest.js';
import { ServiceAccountCache } from './service-account-cache.js';

/** Keys of a DPUCluster's kubeconfig Secret, newest DPF first. */
export const adminKubeconfigKeys = ['super-admin.conf', 'admin.conf'] as const;
const secretPath = (namespace: string, name: string) =>
  `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`;
const inClusterCaPath = '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt';

export interface TargetCluster {
  /** "namespace/name" of the DPUCluster; '' for the host cluster. */
  ref: string;
  uid: string;
  /** Which API server it is (clusterIdOf its endpoint): references differ, servers may not. */
  id: string;
  endpoint: ClusterEndpoint;
  client: KubeRestClient;
  /** Started on first use: a cluster nobody asks for is not watched. */
  serviceAccounts?: ServiceAccountCache;
}

/** The managed-ServiceAccount cache of a target, started on first use. */
export function serviceAccountCacheOf(target: TargetCluster): ServiceAccountCache {
  target.serviceAccounts ??= new ServiceAccountCache(target.client);
  return target.serviceAccounts;
}

function closeTarget(target: TargetCluster): void {
  target.serviceAccounts?.close();
  target.client.close();
}

/** The target cluster cannot be used yet: its DPUCluster or kubeconfig Secret is missing or broken. */
export class TargetClusterNotReadyError extends Error {
  override name = 'TargetClusterNotReadyError';
}

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
}

export class HostCluster {
  private constructor(readonly client: KubeRestClient, readonly target: TargetCluster) {}

  /** KUBECONFIG, else ~/.kube/config, else the in-cluster config (client-node's order). */
  static async fromEnvironment(options: ClusterOptions): Promise<HostCluster> {
    const config = new KubeConfig();
    config.loadFromDefault();
    const { KUBERNETES_SERVICE_HOST: host, KUBERNETES_SERVICE_PORT: port } = process.env;
    let inCluster: ClusterEndpoint | undefined;
    // loadFromDefault prefers KUBECONFIG and ~/.kube/config; the service address describes
    // this cluster only when the in-cluster config is what was loaded.
    if (host && port && config.getCurrentCluster()?.name === 'inCluster') {
      try {
        const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
        inCluster = { clusterName: 'incluster', server, caPem: readFileSync(inClusterCaPath, 'utf8') };
      } catch {
        // not in a Pod after all: no service-account CA mounted
      }
    }
    return HostCluster.fromConfig(config, options, inCluster);
  }

  /**
   * The endpoint written to host-cluster outputs: HOST_CLUSTER_SERVER, else the in-cluster
   * service address, else the kubeconfig's server; the in-cluster CA, else the kubeconfig's.
   */
  static async fromConfig(config: KubeConfig, options: ClusterOptions, inCluster?: ClusterEndpoint): Promise<HostCluster> {
    const observe = options.observeApiCall;
    const client = await KubeRestClient.create(config, {
      timeoutMs: options.timeoutMs, ...(observe ? { observe: (method, code) => observe('host', method, code) } : {}),
    });
    const cluster = config.getCurrentCluster();
    const kubeconfigCaPem = cluster?.caData ? Buffer.from(cluster.caData, 'base64').toString('utf8')
      : cluster?.caFile ? readFileSync(cluster.caFile, 'utf8') : '';
    const endpoint: ClusterEndpoint = {
      clusterName: 'incluster',
      server: options.hostClusterServer ?? inCluster?.server ?? client.server,
      caPem: inCluster?.caPem ?? kubeconfigCaPem,
    };
    return new HostCluster(client, { ref: '', uid: '', id: clusterIdOf(endpoint), endpoint, client });
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

interface CachedTarget {
  fingerprint: string;
  target: TargetCluster;
  /** Identity of the DPUCluster and its Secret name, and when the Secret was last read. */
  source: string;
  readAtMs: number;
  usedAtMs: number;
  /** A sync is reading the Secret again: the others keep using this target meanwhile. */
  rechecking?: boolean;
}

/**
 * A target no sync has used for this long is closed (client and watch). Every request is
 * synced at least every resyncPeriodSeconds (300 s), so only clusters nobody points at go.
 */
export const idleTargetCloseMs = 15 * 60_000;

/**
 * How long a DPUCluster's admin kubeconfig is used without reading its Secret again.
 * A rotated admin kubeconfig is picked up within this; a 401 from the target drops it at once.
 */
export const kubeconfigRecheckMs = 30_000;

export class TargetClusters {
  private readonly cache = new Map<string, CachedTarget>();

  private readonly sweeper: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly idleCloseMs: number;

  constructor(readonly host: HostCluster, private readonly options: ClusterOptions) {
    this.now = options.now ?? Date.now;
    this.idleCloseMs = options.idleCloseMs ?? idleTargetCloseMs;
    this.sweeper = setInterval(() => this.closeIdle(this.now()), Math.min(60_000, this.idleCloseMs));
    this.sweeper.unref();
  }

  /** How many target clients are open. */
  get openTargets(): number {
    return this.cache.size;
  }

  /** Closes the targets unused since before `nowMs - idleCloseMs`. */
  closeIdle(nowMs: number): void {
    for (const [ref, cached] of this.cache) {
      if (nowMs - cached.usedAtMs > this.idleCloseMs) this.forget(ref);
    }
  }

  /**
   * The target behind a DPUCluster: its admin kubeconfig Secret is read on each call,
   * and a client is made only when that kubeconfig changed.
   */
  async forDpuCluster(dpuCluster: DpuClusterObject, deadline?: Deadline): Promise<TargetCluster> {
    const namespace = dpuCluster.metadata?.namespace ?? '';
    const ref = namespacedName(namespace, dpuCluster.metadata?.name ?? '');
    const secretName = dpuCluster.spec?.kubeconfig;
    if (!secretName) throw new TargetClusterNotReadyError(`DPUCluster ${ref} has no spec.kubeconfig yet`);
    const uid = dpuCluster.metadata?.uid ?? '';
    const source = `${uid}/${secretName}`;
    const cached = this.cache.get(ref);
    const known = cached?.source === source ? cached : undefined;
    // One sync reads the Secret again when it is due; the syncs arriving meanwhile (a resync
    // storm brings hundreds) keep the client read a moment ago rather than each reading it too.
    if (known && (this.now() - known.readAtMs < kubeconfigRecheckMs || known.rechecking)) {
      known.usedAtMs = this.now();
      return known.target;
    }

    if (known) known.rechecking = true;
    let secret;
    try {
      secret = await this.host.readSecret(namespace, secretName, deadline);
    } finally {
      if (known) known.rechecking = false;
    }
    if (!secret) throw new TargetClusterNotReadyError(`the kubeconfig Secret ${namespace}/${secretName} of DPUCluster ${ref} does not exist`);
    const key = adminKubeconfigKeys.find((candidate) => secret.data?.[candidate]);
    if (!key) {
      throw new InvalidKubeconfigError(`the kubeconfig Secret ${namespace}/${secretName} of DPUCluster ${ref} has neither ` +
        `${adminKubeconfigKeys.join(' nor ')}`);
    }
    const encoded = secret.data![key]!;
    const fingerprint = createHash('sha256').update(source).update('\0').update(encoded).digest('hex');
    if (cached?.fingerprint === fingerprint) {
      cached.readAtMs = cached.usedAtMs = this.now();
      return cached.target;
    }

    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(encoded)) {
      throw new InvalidKubeconfigError(`the ${key} of Secret ${namespace}/${secretName} is not base64`);
    }
    let loaded;
    try {
      loaded = loadKubeconfig(Buffer.from(encoded, 'base64').toString('utf8'));
    } catch (error) {
      if (error instanceof InvalidKubeconfigError) {
        throw new InvalidKubeconfigError(`the ${key} of Secret ${namespace}/${secretName}: ${error.message}`);
      }
      throw error;
    }
    const observe = this.options.observeApiCall;
    const target: TargetCluster = {
      ref, uid, id: clusterIdOf(loaded.endpoint), endpoint: loaded.endpoint,
      client: await KubeRestClient.create(loaded.config, {
        timeoutMs: this.options.timeoutMs, ...(observe ? { observe: (method, code) => observe('target', method, code) } : {}),
      }),
    };
    // Concurrent syncs may have built a client for the same kubeconfig meanwhile: keep one.
    const current = this.cache.get(ref);
    if (current?.fingerprint === fingerprint) {
      closeTarget(target);
      current.readAtMs = current.usedAtMs = this.now();
      return current.target;
    }
    if (current) closeTarget(current.target);
    this.cache.set(ref, { fingerprint, target, source, readAtMs: this.now(), usedAtMs: this.now() });
    return target;
  }

  /** Forgets a DPUCluster's client (it was deleted). */
  forget(ref: string): void {
    const cached = this.cache.get(ref);
    if (cached) closeTarget(cached.target);
    this.cache.delete(ref);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const { target } of this.cache.values()) closeTarget(target);
    this.cache.clear();
    closeTarget(this.host.target);
  }
}
