// A watch-backed cache of the ServiceAccounts this webhook manages in one cluster (those
// with the managed-by label), so a sync with nothing to do makes no API call. It may lag
// the cluster by the watch's latency; the CompositeController's resyncPeriodSeconds bounds
// how late a change made behind the webhook's back is acted on. Until the first list
// completes, or after the watch breaks, lookups answer "unknown" and callers ask the API.
import { setTimeout as delay } from 'node:timers/promises';
import { managedByLabel, managedByValue } from '../credential/names.js';
import { KubeApiError, KubeUnreachableError, type KubeRestClient } from './rest.js';

export interface CachedServiceAccount {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; resourceVersion?: string };
}

interface ServiceAccountList {
  metadata?: { resourceVersion?: string };
  items?: CachedServiceAccount[];
}

interface WatchEvent {
  type?: string;
  object?: CachedServiceAccount & { code?: number };
}

const selector = encodeURIComponent(`${managedByLabel}=${managedByValue}`);
const watchTimeoutSeconds = 300;
const idleTimeoutMs = 90_000;
const retryDelaysMs = [500, 1_000, 2_000, 5_000, 10_000];

const keyOf = (account: CachedServiceAccount) => `${account.metadata?.namespace}/${account.metadata?.name}`;
/** Waits, or less when signal aborts (then resolves too: the loop checks the signal). */
const sleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined);

export class ServiceAccountCache {
  private readonly accounts = new Map<string, CachedServiceAccount>();
  private synced = false;
  private readonly stopping = new AbortController();
  /** The bug that stopped the watch loop, if one did. */
  stoppedBy: Error | undefined;

  constructor(private readonly client: KubeRestClient) {
    void this.run();
  }

  /** The cached ServiceAccount; null when the cache knows there is no managed one; undefined when it cannot tell. */
  lookup(namespace: string, name: string): CachedServiceAccount | null | undefined {
    if (!this.synced) return undefined;
    return this.accounts.get(`${namespace}/${name}`) ?? null;
  }

  /** Records what this webhook just created, before the watch reports it. */
  remember(account: CachedServiceAccount): void {
    if (account.metadata?.labels?.[managedByLabel] === managedByValue) this.accounts.set(keyOf(account), trim(account));
  }

  /** Forgets what this webhook just deleted. */
  forget(namespace: string, name: string): void {
    this.accounts.delete(`${namespace}/${name}`);
  }

  /** ServiceAccounts cached. */
  get size(): number {
    return this.accounts.size;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  close(): void {
    this.synced = false;
    this.stopping.abort();
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
        if (this.stopping.signal.aborted) return;
        // Neither the server's answer nor the network: a bug here, which a retry would only repeat.
        // The cache stays "unknown" (callers ask the API), and the error is kept for a reader.
        if (!(error instanceof KubeApiError || error instanceof KubeUnreachableError)) {
          this.stoppedBy = error as Error;
          return;
        }
        // 410 Gone: the version is too old; anything else: the cluster is away. Both: list again.
        await sleep(error instanceof KubeApiError && error.statusCode === 410 ? 0 : retryDelaysMs[Math.min(failures++, retryDelaysMs.length - 1)]!, this.stopping.signal);
      }
    }
  }

  private async list(): Promise<string> {
    const list = await this.client.request<ServiceAccountList>('GET', `/api/v1/serviceaccounts?labelSelector=${selector}`);
    this.accounts.clear();
    for (const account of list.items ?? []) this.accounts.set(keyOf(account), trim(account));
    this.synced = true;
    return list.metadata?.resourceVersion ?? '';
  }

  private async watchFrom(resourceVersion: string): Promise<string> {
    let latest = resourceVersion;
    let gone = false;
    await this.client.watch(
      `/api/v1/serviceaccounts?watch=true&allowWatchBookmarks=true&labelSelector=${selector}` +
        `&resourceVersion=${encodeURIComponent(resourceVersion)}&timeoutSeconds=${watchTimeoutSeconds}`,
      (raw) => {
        const event = raw as WatchEvent;
        const object = event.object ?? {};
        if (event.type === 'ERROR') {
          gone = object.code === 410;
          return;
        }
        if (object.metadata?.resourceVersion) latest = object.metadata.resourceVersion;
        if (event.type === 'ADDED' || event.type === 'MODIFIED') this.accounts.set(keyOf(object), trim(object));
        else if (event.type === 'DELETED') this.accounts.delete(keyOf(object));
      },
      idleTimeoutMs,
      this.stopping.signal,
    );
    if (gone) throw new KubeApiError(410, 'Expired', 'the watch resourceVersion is too old');
    return latest;
  }
}

function trim(account: CachedServiceAccount): CachedServiceAccount {
  const { name, namespace, uid, labels } = account.metadata ?? {};
  return { metadata: { name, namespace, uid, labels } };
}
