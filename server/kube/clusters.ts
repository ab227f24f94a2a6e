// The clusters a sync may reach: the host, and one cached, connection-reusing client per
// DPUCluster, kept while its admin kubeconfig stays the same.
import { createHash } from 'node:crypto';
import type { DpuClusterObject } from '../api.js';
import { namespacedName } from '../credential/names.js';
import { clusterIdOf } from '../credential/service-account-ledger.js';
import { encodedAdminKubeconfig, loadAdminKubeconfig, type EncodedAdminKubeconfig } from './admin-kubeconfig.js';
import type { HostCluster } from './host-cluster.js';
import { InvalidKubeconfigError } from './kubeconfig.js';
import type { Deadline } from './rest.js';
import { createClusterClient, TargetCluster, type ClusterOptions } from './target-cluster.js';

/** The target cluster cannot be used yet: its DPUCluster or kubeconfig Secret is missing or broken. */
export class TargetClusterNotReadyError extends Error {
  override name = 'TargetClusterNotReadyError';
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

/** What a DPUCluster says about where its admin kubeconfig is. */
interface KubeconfigSource {
  ref: string;
  uid: string;
  namespace: string;
  secretName: string;
  /** The DPUCluster's UID and Secret name: a recreated DPUCluster or a new Secret is another source. */
  key: string;
}

function kubeconfigSourceOf(dpuCluster: DpuClusterObject): KubeconfigSource {
  const namespace = dpuCluster.metadata?.namespace ?? '';
  const ref = namespacedName(namespace, dpuCluster.metadata?.name ?? '');
  const secretName = dpuCluster.spec?.kubeconfig;
  if (!secretName) throw new TargetClusterNotReadyError(`DPUCluster ${ref} has no spec.kubeconfig yet`);
  const uid = dpuCluster.metadata?.uid ?? '';
  return { ref, uid, namespace, secretName, key: `${uid}/${secretName}` };
}

const fingerprintOf = (source: KubeconfigSource, kubeconfig: EncodedAdminKubeconfig) =>
  createHash('sha256').update(source.key).update('\0').update(kubeconfig.encoded).digest('hex');

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
  /**
   * Per DPUCluster, the last admin kubeconfig found invalid and why: an unchanged bad Secret is
   * answered with the same error at every sync without being parsed again (parsing is bounded,
   * but whoever writes the Secret should not make every resync pay for it).
   */
  private readonly invalid = new Map<string, { fingerprint: string; error: InvalidKubeconfigError }>();

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
   * The target behind a DPUCluster. Its admin kubeconfig Secret is read again once
   * kubeconfigRecheckMs has passed, and a client is made only when that kubeconfig changed.
   */
  async forDpuCluster(dpuCluster: DpuClusterObject, deadline?: Deadline): Promise<TargetCluster> {
    const source = kubeconfigSourceOf(dpuCluster);
    const cached = this.cache.get(source.ref);
    const known = cached?.source === source.key ? cached : undefined;
    // One sync reads the Secret again when it is due; the syncs arriving meanwhile (a resync
    // storm brings hundreds) keep the client read a moment ago rather than each reading it too.
    if (known && (this.now() - known.readAtMs < kubeconfigRecheckMs || known.rechecking)) return this.used(known, false);
    const kubeconfig = await this.readKubeconfig(source, known, deadline);
    const fingerprint = fingerprintOf(source, kubeconfig);
    if (cached?.fingerprint === fingerprint) return this.used(cached, true);
    const refused = this.invalid.get(source.ref);
    if (refused?.fingerprint === fingerprint) throw refused.error;
    let target: TargetCluster;
    try {
      target = this.connect(source, kubeconfig);
    } catch (error) {
      if (error instanceof InvalidKubeconfigError) this.invalid.set(source.ref, { fingerprint, error });
      throw error;
    }
    this.invalid.delete(source.ref);
    return this.keep(source, fingerprint, target);
  }

  private used(cached: CachedTarget, reread: boolean): TargetCluster {
    cached.usedAtMs = this.now();
    if (reread) cached.readAtMs = cached.usedAtMs;
    return cached.target;
  }

  /** The admin kubeconfig as the Secret holds it now; `known` is marked as being rechecked meanwhile. */
  private async readKubeconfig(source: KubeconfigSource, known: CachedTarget | undefined, deadline?: Deadline): Promise<EncodedAdminKubeconfig> {
    if (known) known.rechecking = true;
    let secret;
    try {
      secret = await this.host.readSecret(source.namespace, source.secretName, deadline);
    } finally {
      if (known) known.rechecking = false;
    }
    const secretRef = namespacedName(source.namespace, source.secretName);
    if (!secret) throw new TargetClusterNotReadyError(`the kubeconfig Secret ${secretRef} of DPUCluster ${source.ref} does not exist`);
    return encodedAdminKubeconfig(secret, secretRef, source.ref);
  }

  private connect(source: KubeconfigSource, kubeconfig: EncodedAdminKubeconfig): TargetCluster {
    const loaded = loadAdminKubeconfig(kubeconfig, namespacedName(source.namespace, source.secretName));
    const client = createClusterClient(loaded.connection, this.options, 'target');
    return new TargetCluster(source.ref, source.uid, clusterIdOf(loaded.endpoint), loaded.endpoint, client, this.options.log);
  }

  /** Caches `target`, unless a concurrent sync cached a client for the same kubeconfig meanwhile: then that one is kept. */
  private keep(source: KubeconfigSource, fingerprint: string, target: TargetCluster): TargetCluster {
    const current = this.cache.get(source.ref);
    if (current?.fingerprint === fingerprint) {
      target.close();
      return this.used(current, true);
    }
    current?.target.close();
    this.cache.set(source.ref, { fingerprint, target, source: source.key, readAtMs: this.now(), usedAtMs: this.now() });
    return target;
  }

  /** Closes and drops a DPUCluster's client: the DPUCluster was deleted, or its credentials were refused. */
  forget(ref: string): void {
    this.invalid.delete(ref);
    this.cache.get(ref)?.target.close();
    this.cache.delete(ref);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const { target } of this.cache.values()) target.close();
    this.cache.clear();
    this.invalid.clear();
    this.host.close();
  }
}
