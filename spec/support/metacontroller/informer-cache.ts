// Metacontroller's shared informers (pkg/dynamic/informer), as the driver models them: what
// a sync reads (its parent, the objects its selector matches, its related objects) is listed
// afresh when the sync reads it, unless the test holds the cache. A held cache keeps serving
// what it listed before, as an informer that has not yet seen the driver's own writes would:
// Metacontroller has no "expectations", so a sync can run on objects older than the ones it
// just wrote. (A real informer holds every object and follows a watch; listing only what a
// sync reads keeps the driver cheap with thousands of requests.)
import type { KubeObject } from '../../../server/api.js';
import { KubeApiError, type KubeRestClient } from '../../../server/kube/rest.js';

export class InformerCache<T extends KubeObject = KubeObject> {
  private readonly snapshots = new Map<string, T[]>();
  private held = false;

  /** `collectionPath(namespace)`: the list URL of the resource in a namespace. */
  constructor(private readonly host: KubeRestClient, private readonly collectionPath: (namespace: string) => string) {}

  /** The objects in `namespace` that `query` (a label or field selector, URL-encoded) selects. */
  async list(namespace: string, query = ''): Promise<T[]> {
    const key = `${namespace}?${query}`;
    const cached = this.snapshots.get(key);
    if (this.held && cached) return cached;
    const list = await this.relist(`${this.collectionPath(namespace)}${query ? `?${query}` : ''}`);
    const items = list.items ?? [];
    this.snapshots.set(key, items);
    return items;
  }

  /** One object by name. */
  async get(namespace: string, name: string): Promise<T | undefined> {
    return (await this.list(namespace, `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`))[0];
  }

  /** An informer's reflector lists again after an error; an API server just restarted answers 503 for a moment. */
  private async relist(path: string, attempts = 50): Promise<{ items?: T[] }> {
    try {
      return await this.host.request<{ items?: T[] }>('GET', path);
    } catch (error) {
      const transient = error instanceof KubeApiError && (error.statusCode === 503 || error.statusCode === 429);
      if (!transient || attempts <= 1) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return await this.relist(path, attempts - 1);
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
