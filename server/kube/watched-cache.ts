// One collection of a cluster held in memory by a list and a watch, as a client-go informer
// holds it, for lookups without an API call. It may lag the API server by the watch's latency.
// Until the first list completes, or after the watch breaks, lookups answer "unknown" and
// callers ask the API. A 410 lists again at once; anything from the server or the network,
// after a backoff; anything else is a bug, which a retry would only repeat: the loop stops
// and keeps it in stoppedBy.
import { setTimeout as delay } from 'node:timers/promises';
import { KubeApiError, KubeUnreachableError, type KubeRestClient } from './rest.js';

export interface WatchedObject {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
}

interface ObjectList<T> {
  metadata?: { resourceVersion?: string };
  items?: T[];
}

interface WatchEvent<T> {
  type?: string;
  object?: T & { code?: number };
}

const watchTimeoutSeconds = 300;
/** The API server sends a bookmark about every minute on a quiet watch: silence past this means it is gone. */
const idleTimeoutMs = 90_000;
const retryDelaysMs = [500, 1_000, 2_000, 5_000, 10_000];

const keyOf = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ''}/${name ?? ''}`;
/** Waits, or less when signal aborts (then resolves too: the loop checks the signal). */
const sleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => undefined);

export abstract class WatchedCache<T extends WatchedObject> {
  private readonly objects = new Map<string, T>();
  private synced = false;
  private readonly stopping = new AbortController();
  /** Called after every list, event and break: tests wait on it for what the watch has brought. */
  private readonly listeners = new Set<() => void>();
  /** The bug that stopped the watch loop, if one did. */
  stoppedBy: Error | undefined;

  /**
   * `path`: the collection, with its query (a label selector) if any.
   * `trim`: what is kept of an object; the rest is dropped as soon as it is read.
   */
  constructor(private readonly client: KubeRestClient, private readonly path: string, private readonly trim: (object: T) => T) {
    void this.run();
  }

  /** The object as last seen; null when the cache is synced and holds none; undefined when it cannot tell. */
  lookup(namespace: string, name: string): T | null | undefined {
    if (!this.synced) return undefined;
    return this.objects.get(keyOf(namespace, name)) ?? null;
  }

  /** Objects cached. */
  get size(): number {
    return this.objects.size;
  }

  get isSynced(): boolean {
    return this.synced;
  }

  /** Resolves once `check` holds, checked now and after each list, event and break. */
  until(check: (cache: this) => boolean): Promise<void> {
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

  /** Holds `object` before the watch reports it (what this webhook just created). */
  protected store(object: T): void {
    this.objects.set(keyOf(object.metadata?.namespace, object.metadata?.name), this.trim(object));
  }

  /** Drops it before the watch reports it (what this webhook just deleted). */
  protected drop(namespace: string | undefined, name: string | undefined): void {
    this.objects.delete(keyOf(namespace, name));
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
        if (!(error instanceof KubeApiError || error instanceof KubeUnreachableError)) {
          this.stoppedBy = error as Error;
          return;
        }
        // 410 Gone: the version is too old, list again at once. Anything else (the cluster away,
        // or 403 while the RBAC lacks list and watch): list again after a backoff.
        await sleep(error instanceof KubeApiError && error.statusCode === 410 ? 0 : retryDelaysMs[Math.min(failures++, retryDelaysMs.length - 1)]!, this.stopping.signal);
      }
    }
  }

  private async list(): Promise<string> {
    const list = await this.client.request<ObjectList<T>>('GET', this.path);
    this.objects.clear();
    for (const object of list.items ?? []) this.store(object);
    this.synced = true;
    this.changed();
    return list.metadata?.resourceVersion ?? '';
  }

  private async watchFrom(resourceVersion: string): Promise<string> {
    let latest = resourceVersion;
    let gone = false;
    await this.client.watch(
      `${this.path}${this.path.includes('?') ? '&' : '?'}watch=true&allowWatchBookmarks=true` +
        `&resourceVersion=${encodeURIComponent(resourceVersion)}&timeoutSeconds=${watchTimeoutSeconds}`,
      (raw) => {
        const event = raw as WatchEvent<T>;
        if (event.type === 'ERROR') {
          gone = event.object?.code === 410;
          return;
        }
        const object = event.object ?? ({} as T);
        if (object.metadata?.resourceVersion) latest = object.metadata.resourceVersion;
        if (event.type === 'ADDED' || event.type === 'MODIFIED') this.store(object);
        else if (event.type === 'DELETED') this.drop(object.metadata?.namespace, object.metadata?.name);
        this.changed();
      },
      idleTimeoutMs,
      this.stopping.signal,
    );
    if (gone) throw new KubeApiError(410, 'Expired', 'the watch resourceVersion is too old');
    return latest;
  }
}
