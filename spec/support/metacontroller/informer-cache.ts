// Metacontroller's shared informers (pkg/dynamic/informer), as the driver models them: a
// snapshot of one resource per namespace, listed afresh when a sync reads it, unless the
// test holds it. A held cache keeps serving what it listed before, as an informer that has
// not yet seen the driver's own writes would: Metacontroller has no "expectations", so a
// sync can run on children older than the ones it just applied.
import type { KubeObject } from '../../../server/api.js';
import { KubeApiError, type KubeRestClient } from '../../../server/kube/rest.js';

export class InformerCache<T extends KubeObject = KubeObject> {
  private readonly snapshots = new Map<string, T[]>();
  private held = false;

  /** `collectionPath(namespace)`: the list URL of the resource in a namespace. */
  constructor(private readonly host: KubeRestClient, private readonly collectionPath: (namespace: string) => string) {}

  async list(namespace: string): Promise<T[]> {
    const cached = this.snapshots.get(namespace);
    if (this.held && cached) return cached;
    const list = await this.relist(namespace);
    const items = list.items ?? [];
    this.snapshots.set(namespace, items);
    return items;
  }

  /** An informer's reflector lists again after an error; an API server just restarted answers 503 for a moment. */
  private async relist(namespace: string, attempts = 50): Promise<{ items?: T[] }> {
    try {
      return await this.host.request<{ items?: T[] }>('GET', this.collectionPath(namespace));
    } catch (error) {
      const transient = error instanceof KubeApiError && (error.statusCode === 503 || error.statusCode === 429);
      if (!transient || attempts <= 1) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
      return await this.relist(namespace, attempts - 1);
    }
  }

  /** From now on, serve the last snapshot: the cache lags behind every write until release(). */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
  }
}
