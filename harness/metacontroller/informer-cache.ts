// Metacontroller's shared informers (pkg/dynamic/informer), as the driver models them. Two
// kinds: InformerCache (the tests') and WatchedInformer (the benchmark's, further down).
//
// InformerCache: what a sync reads (its parent, the objects its selector matches, its related
// objects) is read afresh when the sync reads it, unless the test holds the cache. A held cache keeps serving
// what it listed before, as an informer that has not yet seen the driver's own writes would:
// Metacontroller has no "expectations", so a sync can run on objects older than the ones it
// just wrote. (A real informer holds every object and follows a watch; listing only what a
// sync reads keeps the driver cheap with thousands of requests.)
import type { KubeObject } from '../../server/api.js';
import { KubeApiError, type KubeRestClient } from '../../server/kube/rest.js';

/** What a sync reads from an informer. */
export interface Informer<T extends KubeObject = KubeObject> {
  /** The objects in `namespace` ('': every namespace); with `label`, only those whose label `label[0]` has the value `label[1]`. */
  list(namespace: string, label?: readonly [string, string]): Promise<T[]>;
  get(namespace: string, name: string): Promise<T | undefined>;
  hold(): void;
  release(): void;
}

export class InformerCache<T extends KubeObject = KubeObject> implements Informer<T> {
  private readonly snapshots = new Map<string, T[] | T | undefined>();
  private held = false;

  /** `collectionPath(namespace)`: the list URL of the resource in a namespace. */
  constructor(private readonly host: KubeRestClient, private readonly collectionPath: (namespace: string) => string) {}

  async list(namespace: string, label?: readonly [string, string]): Promise<T[]> {
    const query = label ? `labelSelector=${encodeURIComponent(`${label[0]}=${label[1]}`)}` : '';
    return await this.snapshot(`${namespace}?${query}`, async () =>
      (await this.relist<{ items?: T[] }>(`${this.collectionPath(namespace)}${query ? `?${query}` : ''}`)).items ?? []);
  }

  async get(namespace: string, name: string): Promise<T | undefined> {
    return await this.snapshot(`${namespace}/${name}`, async () => {
      try {
        return await this.relist<T>(`${this.collectionPath(namespace)}/${encodeURIComponent(name)}`);
      } catch (error) {
        if (error instanceof KubeApiError && error.statusCode === 404) return undefined;
        throw error;
      }
    });
  }

  private async snapshot<R extends T[] | T | undefined>(key: string, read: () => Promise<R>): Promise<R> {
    if (this.held && this.snapshots.has(key)) return this.snapshots.get(key) as R;
    const value = await read();
    this.snapshots.set(key, value);
    return value;
  }

  /** An informer's reflector lists again after an error; an API server just restarted answers 503 for a moment. */
  private async relist<R>(path: string, attempts = 50): Promise<R> {
    try {
      return await this.host.request<R>('GET', path);
    } catch (error) {
      const transient = error instanceof KubeApiError && (error.statusCode === 503 || error.statusCode === 429);
      if (!transient || attempts <= 1) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return await this.relist<R>(path, attempts - 1);
    }
  }

  /** From now on, serve the last snapshots: the cache lags behind every write until release(). */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
  }
}

/**
 * WatchedInformer: the informer as Metacontroller has it: one list, then a watch, over all
 * namespaces; a sync reads memory and costs the API server nothing. Metacontroller syncs a
 * parent again when the watch brings the event of its own write; the driver, which syncs
 * again at once, first waits until the watches have brought every write it made (expect()
 * and settled()). Deletions by the driver are not awaited: the benchmark deletes nothing.
 */
export class WatchedInformer<T extends KubeObject = KubeObject> implements Informer<T> {
  private readonly objects = new Map<string, T>();
  /** Keys by the value of `indexLabel`: a selector lookup without a scan. */
  private readonly byLabel = new Map<string, Set<string>>();
  /** resourceVersions of the driver's writes the watch has not brought yet. */
  private readonly expected = new Map<string, bigint>();
  private waiters: (() => void)[] = [];
  /** Tests waiting for an object to reach a state: checked after every event. */
  private watchers: { check: () => boolean; wake: () => void }[] = [];
  private readonly stopping = new AbortController();
  private readonly ready: Promise<string>;
  /** The first list is done: from now on every change goes to the handler. */
  private listed = false;
  /**
   * The event handler (client-go ResourceEventHandlerFuncs): called after the first list for
   * each add, update (`previous` set) and delete, as they arrive. The first list's objects are
   * not handed to it (see MODEL.md).
   */
  onChange?: (type: 'ADDED' | 'MODIFIED' | 'DELETED', current: T, previous: T | undefined) => void;

  /** `path`: the collection over all namespaces. */
  constructor(private readonly host: KubeRestClient, private readonly path: string, private readonly indexLabel: string) {
    this.ready = this.listAll();
    // A failed first list reaches the syncs that await `ready`; the watch starts only after a list.
    void this.ready.then((resourceVersion) => this.watchFrom(resourceVersion), () => undefined);
  }

  async list(namespace: string, label?: readonly [string, string]): Promise<T[]> {
    await this.ready;
    const keys = label?.[0] === this.indexLabel ? this.byLabel.get(label[1]) ?? new Set<string>() : this.objects.keys();
    return [...keys].map((key) => this.objects.get(key)!).filter((object) =>
      (!namespace || object.metadata?.namespace === namespace) && (!label || object.metadata?.labels?.[label[0]] === label[1]));
  }

  async get(namespace: string, name: string): Promise<T | undefined> {
    await this.ready;
    return this.objects.get(`${namespace}/${name}`);
  }

  hold(): void {
    throw new Error('a watched informer cannot be held; tests use InformerCache');
  }

  release(): void {}

  /** The driver wrote `object`: settled() waits until the watch has brought this version. */
  expect(object: KubeObject): void {
    const key = `${object.metadata?.namespace}/${object.metadata?.name}`;
    const version = BigInt(object.metadata?.resourceVersion ?? '0');
    if (BigInt(this.objects.get(key)?.metadata?.resourceVersion ?? '0') >= version) return;
    if ((this.expected.get(key) ?? 0n) < version) this.expected.set(key, version);
  }

  /** Resolves once `check` holds for what the watch has brought (a test's wait for an event, no timing). */
  async until(check: (informer: this) => boolean, timeoutMs = 30_000): Promise<void> {
    await this.ready;
    if (check(this)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.path}: the awaited event did not come in ${timeoutMs} ms`)), timeoutMs);
      this.watchers.push({ check: () => check(this), wake: () => {
        clearTimeout(timer);
        resolve();
      } });
    });
  }

  /** The object as the watch last brought it (no wait for the first list). */
  peek(namespace: string, name: string): T | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }

  /** Resolves when every expected write has arrived through the watch. */
  async settled(timeoutMs = 30_000): Promise<void> {
    await this.ready;
    if (this.expected.size === 0) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.path}: the watch did not bring ${this.expected.size} writes in ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    this.stopping.abort();
  }

  private apply(type: string, object: T): void {
    const key = `${object.metadata?.namespace}/${object.metadata?.name}`;
    const previous = this.objects.get(key);
    const previousValue = previous?.metadata?.labels?.[this.indexLabel];
    if (previousValue !== undefined) this.byLabel.get(previousValue)?.delete(key);
    if (this.listed && this.onChange) {
      if (type === 'DELETED') {
        if (previous) this.onChange('DELETED', previous, undefined);
      } else if (!previous) {
        this.onChange('ADDED', object, undefined);
      } else if (previous.metadata?.resourceVersion !== object.metadata?.resourceVersion) {
        // onRelatedUpdate(): an update that keeps the resourceVersion (a resync) is no change.
        this.onChange('MODIFIED', object, previous);
      }
    }
    if (type === 'DELETED') {
      this.objects.delete(key);
    } else {
      this.objects.set(key, object);
      const value = object.metadata?.labels?.[this.indexLabel];
      if (value !== undefined) {
        let keys = this.byLabel.get(value);
        if (!keys) this.byLabel.set(value, keys = new Set());
        keys.add(key);
      }
    }
    const wanted = this.expected.get(key);
    if (wanted !== undefined && (type === 'DELETED' || BigInt(object.metadata?.resourceVersion ?? '0') >= wanted)) this.expected.delete(key);
    if (this.expected.size === 0 && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
    }
    if (this.watchers.length > 0) {
      const due = this.watchers.filter((watcher) => watcher.check());
      this.watchers = this.watchers.filter((watcher) => !due.includes(watcher));
      for (const watcher of due) watcher.wake();
    }
  }

  /**
   * The first list, and a relist after 410 Gone (the Reflector's Replace): what changed
   * meanwhile reaches the handler as adds, updates and deletes.
   */
  private async listAll(): Promise<string> {
    const seen = new Set<string>();
    let next: string | undefined;
    let resourceVersion = '';
    do {
      const page = await this.host.request<{ items?: T[]; metadata?: { continue?: string; resourceVersion?: string } }>('GET',
        `${this.path}?limit=500${next ? `&continue=${encodeURIComponent(next)}` : ''}`);
      for (const object of page.items ?? []) {
        seen.add(`${object.metadata?.namespace}/${object.metadata?.name}`);
        this.apply('ADDED', object);
      }
      next = page.metadata?.continue;
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    } while (next);
    for (const [key, object] of [...this.objects]) {
      if (!seen.has(key)) this.apply('DELETED', object);
    }
    this.listed = true;
    return resourceVersion;
  }

  private async watchFrom(listedAt: string): Promise<void> {
    let resourceVersion = listedAt;
    while (!this.stopping.signal.aborted) {
      let gone = false;
      try {
        await this.host.watch(`${this.path}?watch=true&allowWatchBookmarks=true&resourceVersion=${resourceVersion}&timeoutSeconds=300`, (raw) => {
          const event = raw as { type: string; object: T & { code?: number } };
          if (event.type === 'ERROR') {
            gone = event.object.code === 410;
            return;
          }
          resourceVersion = event.object.metadata?.resourceVersion ?? resourceVersion;
          if (event.type !== 'BOOKMARK') this.apply(event.type, event.object);
        }, 120_000, this.stopping.signal);
        // 410 Gone: the version is too old, list again.
        if (gone) resourceVersion = await this.listAll();
      } catch {
        if (this.stopping.signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }
}
