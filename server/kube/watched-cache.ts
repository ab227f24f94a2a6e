// One collection of a cluster held in memory by a list and a watch, as a client-go informer
// holds it, for lookups without an API call. It may lag the API server by the watch's latency.
// Until the first list completes, or after the watch breaks, lookups answer "unknown" and
// callers ask the API. As client-go's reflector: the list is paged; a watch that ends is
// resumed from the last version seen; one that fails (an ERROR event, a broken connection, or
// an end within a second with no event) lists again, after a backoff that grows with each
// failure and resets after a healthy watch. Anything else is a bug, which a retry would only
// repeat: the loop stops and keeps it in stoppedBy.
//
// What the server sends is not trusted to be small (a DPUCluster owner runs the target API
// server): only what `trim` keeps of an object is held, objects it refuses (not matching the
// selector, a field too long) and names longer than Kubernetes allows are not held, and past
// maxObjects (over a whole list, or held at once) the cache stops as on a bug, empty: lookups
// then answer "unknown" for good and callers read the API.
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger, type Logger } from '../log.js';
import { KubeApiError, KubeUnreachableError, type KubeRestClient } from './rest.js';

export interface WatchedObject {
  metadata?: { namespace?: string; name?: string; resourceVersion?: string };
}

interface ObjectList<T> {
  metadata?: { resourceVersion?: string; continue?: string };
  items?: T[];
}

interface WatchStatus {
  code?: number;
  reason?: string;
  message?: string;
}

interface WatchEvent<T> {
  type?: string;
  object?: T & WatchStatus;
}

const watchTimeoutSeconds = 300;
/** The API server sends a bookmark about every minute on a quiet watch: silence past this means it is gone. */
const idleTimeoutMs = 90_000;
/** Items per list page (client-go's pager asks for 500). */
export const listPageSize = 500;
/** A watch that ends sooner than this failed, whatever it brought (client-go: "very short watch", there only without an event). */
export const shortWatchMs = 1_000;
/** A watch that lasted this long was healthy: the relist backoff starts over (client-go resets its backoff after 2 minutes without a failure). */
export const healthyWatchMs = 60_000;

/** The longest wait between two lists. */
export const maxRelistDelayMs = 30_000;

/**
 * The wait before listing again after `failures` failures in a row: client-go's reflector
 * backoff (800 ms doubling) with up to as much again of jitter, so that the caches of many
 * clusters broken at once do not call back in step, at most maxRelistDelayMs (client-go's
 * jitter may double its 30 s; a cache that is not synced costs the syncs API calls, so this
 * one waits no longer). `random` is in [0, 1).
 */
export function relistDelayMs(failures: number, random: number = Math.random()): number {
  const base = 800 * 2 ** Math.min(Math.max(0, failures - 1), 16);
  return Math.min(maxRelistDelayMs, Math.round(base * (1 + random)));
}

/** The longest Kubernetes object name (a DNS subdomain); a namespace is shorter still. */
export const maxNameLength = 253;

/** `value` when it is a string of at most `max` characters, else undefined. */
export function bounded(value: unknown, max: number): string | undefined {
  return typeof value === 'string' && value.length <= max ? value : undefined;
}

/** The cache held, or a list brought, more objects than its cap: it stops rather than grow. */
export class CacheOverflowError extends Error {
  constructor(readonly path: string, readonly maxObjects: number) {
    super(`${path}: more than ${maxObjects} objects; the cache stops and callers read the API`);
    this.name = 'CacheOverflowError';
  }
}

export interface CacheLimits {
  /** The most objects held, and the most items read over one list's pages. */
  maxObjects: number;
  /** Where the stop is reported (warn; no object data). */
  log?: Logger;
}

/** Its key, or undefined when the name or namespace is missing, not a string or too long. */
function validKeyOf(object: WatchedObject): string | undefined {
  const name = bounded(object.metadata?.name, maxNameLength);
  const namespace = object.metadata?.namespace === undefined ? '' : bounded(object.metadata.namespace, maxNameLength);
  return name && namespace !== undefined ? keyOf(namespace, name) : undefined;
}

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
   * `trim`: what is kept of an object, the rest dropped as soon as it is read; undefined for
   * an object not to hold (not matching the selector, or a field beyond its bound).
   */
  constructor(private readonly client: KubeRestClient, private readonly path: string,
    private readonly trim: (object: T) => T | undefined, private readonly limits: CacheLimits) {
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
    if (this.stoppedBy) return;
    try {
      this.hold(object);
    } catch (error) {
      this.stop(error as Error);
      this.stopping.abort();
    }
  }

  /** Drops it before the watch reports it (what this webhook just deleted). */
  protected drop(namespace: string | undefined, name: string | undefined): void {
    this.objects.delete(keyOf(namespace, name));
  }

  /** Holds what trim keeps of `object`, or forgets one it refuses; throws past maxObjects. */
  private hold(object: T): void {
    const key = validKeyOf(object);
    if (key === undefined) return;
    const kept = this.trim(object);
    if (!kept) {
      this.objects.delete(key);
      return;
    }
    if (!this.objects.has(key) && this.objects.size >= this.limits.maxObjects) throw new CacheOverflowError(this.path, this.limits.maxObjects);
    this.objects.set(key, kept);
  }

  /** For good, empty and unsynced (lookups answer "unknown"), after a bug or past the cap. */
  private stop(error: Error): void {
    this.stoppedBy = error;
    this.synced = false;
    this.objects.clear();
    (this.limits.log ?? silentLogger).warn('watch cache stopped; lookups go to the API server', {
      server: this.client.server, path: this.path.split('?')[0], maxObjects: this.limits.maxObjects,
      reason: error instanceof CacheOverflowError ? 'overflow' : error.name,
    });
    this.changed();
  }

  private changed(): void {
    for (const listener of [...this.listeners]) listener();
  }

  private async run(): Promise<void> {
    /** Failures since the last healthy watch. */
    let failures = 0;
    while (!this.stopping.signal.aborted) {
      try {
        let resourceVersion = await this.list();
        // Watch until the server ends it, then continue from the last version seen.
        for (;;) {
          const started = performance.now();
          const watched = await this.watchFrom(resourceVersion);
          if (this.stopping.signal.aborted) return;
          // client-go calls a watch shorter than a second an error only without an event; a server that
          // sends one bookmark and ends each watch would then be watched again at once, thousands of times
          // a second. Only a watch that lasted is healthy here, whatever it brought.
          const lasted = performance.now() - started;
          if (lasted < shortWatchMs) {
            throw new KubeUnreachableError(this.client.server, `the watch ended within ${shortWatchMs} ms`);
          }
          // The backoff starts over only after a watch a real server keeps (minutes): one ended after
          // just over a second, then a 410, would otherwise have the list read again at once, forever.
          if (lasted >= healthyWatchMs) failures = 0;
          resourceVersion = watched.resourceVersion;
        }
      } catch (error) {
        this.synced = false;
        this.changed();
        if (this.stopping.signal.aborted) return;
        if (!(error instanceof KubeApiError || error instanceof KubeUnreachableError)) {
          this.stop(error as Error);
          return;
        }
        // 410 Gone after a healthy watch: the version is too old, list again at once. Anything
        // else (the cluster away, an ERROR event, 403 while the RBAC lacks list and watch, a
        // server that keeps answering 410): list again after the backoff.
        const expired = error instanceof KubeApiError && error.statusCode === 410;
        failures += 1;
        await sleep(expired && failures === 1 ? 0 : relistDelayMs(failures), this.stopping.signal);
      }
    }
  }

  /** The whole collection, page by page; the cache is replaced only once the last page is in. */
  private async list(): Promise<string> {
    const separator = this.path.includes('?') ? '&' : '?';
    const listed = new Map<string, T>();
    let continueToken = '';
    let resourceVersion = '';
    // The API server fills every page but the last (it reads on past what the selector
    // filters out), so more pages than the cap needs means a server that does not end the list.
    const maxPages = Math.ceil(this.limits.maxObjects / listPageSize) + 10;
    let itemsRead = 0;
    let pages = 0;
    let restarted = false;
    for (;;) {
      if (++pages > maxPages) throw new CacheOverflowError(this.path, this.limits.maxObjects);
      let page: ObjectList<T>;
      try {
        page = await this.client.request<ObjectList<T>>('GET',
          `${this.path}${separator}limit=${listPageSize}${continueToken ? `&continue=${encodeURIComponent(continueToken)}` : ''}`);
      } catch (error) {
        // The continue token expired (410) between pages: the list starts over once, as client-go's pager
        // does; a server whose tokens always expire fails the list (and it is tried again after the backoff).
        if (continueToken && !restarted && error instanceof KubeApiError && error.statusCode === 410) {
          restarted = true;
          listed.clear();
          continueToken = '';
          itemsRead = 0;
          pages = 0;
          continue;
        }
        throw error;
      }
      const items = Array.isArray(page.items) ? page.items : [];
      itemsRead += items.length;
      if (itemsRead > this.limits.maxObjects) throw new CacheOverflowError(this.path, this.limits.maxObjects);
      for (const object of items) {
        const key = validKeyOf(object);
        const kept = key === undefined ? undefined : this.trim(object);
        if (key !== undefined && kept) listed.set(key, kept);
      }
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      continueToken = page.metadata?.continue ?? '';
      if (!continueToken) break;
    }
    this.objects.clear();
    for (const [key, object] of listed) this.objects.set(key, object);
    this.synced = true;
    this.changed();
    return resourceVersion;
  }

  /** Until the server ends the watch; throws an ERROR event as the KubeApiError it carries. */
  private async watchFrom(resourceVersion: string): Promise<{ resourceVersion: string; events: number }> {
    let latest = resourceVersion;
    let events = 0;
    await this.client.watch(
      `${this.path}${this.path.includes('?') ? '&' : '?'}watch=true&allowWatchBookmarks=true` +
        `&resourceVersion=${encodeURIComponent(resourceVersion)}&timeoutSeconds=${watchTimeoutSeconds}`,
      (raw) => {
        const event = raw as WatchEvent<T>;
        if (event.type === 'ERROR') {
          // Not resumable from this version (410), nor from any (another error): the caller lists again.
          const status: WatchStatus = event.object ?? {};
          throw new KubeApiError(status.code ?? 500, status.reason ?? 'WatchError', `watch ${this.path}: ${status.message ?? 'an ERROR event'}`);
        }
        events += 1;
        const object = event.object ?? ({} as T);
        if (object.metadata?.resourceVersion) latest = object.metadata.resourceVersion;
        if (event.type === 'ADDED' || event.type === 'MODIFIED') this.hold(object);
        else if (event.type === 'DELETED') this.drop(object.metadata?.namespace, object.metadata?.name);
        this.changed();
      },
      idleTimeoutMs,
      this.stopping.signal,
    );
    return { resourceVersion: latest, events };
  }
}
