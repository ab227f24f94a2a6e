// A watch-backed cache of the ServiceAccounts this webhook manages in one cluster (those
// with the managed-by label), so a sync with nothing to do makes no API call. It may lag
// the cluster by the watch's latency; the CompositeController's resyncPeriodSeconds bounds
// how late a change made behind the webhook's back is acted on. Until the first list
// completes, or after the watch breaks, lookups answer "unknown" and callers ask the API.
import { managedByLabel, managedByValue } from '../credential/names.js';
import type { KubeRestClient } from './rest.js';
import { WatchedCache } from './watched-cache.js';

export interface CachedServiceAccount {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; resourceVersion?: string };
}

const selector = encodeURIComponent(`${managedByLabel}=${managedByValue}`);

function trim(account: CachedServiceAccount): CachedServiceAccount {
  const { name, namespace, uid, labels } = account.metadata ?? {};
  return { metadata: { name, namespace, uid, labels } };
}

export class ServiceAccountCache extends WatchedCache<CachedServiceAccount> {
  constructor(client: KubeRestClient) {
    super(client, `/api/v1/serviceaccounts?labelSelector=${selector}`, trim);
  }

  /** Records what this webhook just created, before the watch reports it. */
  remember(account: CachedServiceAccount): void {
    if (account.metadata?.labels?.[managedByLabel] === managedByValue) this.store(account);
  }

  /** Forgets what this webhook just deleted. */
  forget(namespace: string, name: string): void {
    this.drop(namespace, name);
  }
}
