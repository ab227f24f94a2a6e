// A watch-backed cache of the ServiceAccounts this webhook manages in one cluster (those
// with the managed-by label), so a sync with nothing to do makes no API call. It may lag
// the cluster by the watch's latency; the CompositeController's resyncPeriodSeconds bounds
// how late a change made behind the webhook's back is acted on. Until the first list
// completes, or after the watch breaks, lookups answer "unknown" and callers ask the API.
//
// A target's API server is its DPUCluster owner's: it is held to what the label checks read
// (service-accounts.ts: the UID and the three managed labels), only for objects that carry
// the selector's label, and to maxCachedServiceAccounts objects (watched-cache.ts).
import { managedByLabel, managedByValue, requestNameLabel, requestNamespaceLabel } from '../credential/names.js';
import type { Logger } from '../log.js';
import type { KubeRestClient } from './rest.js';
import { bounded, WatchedCache } from './watched-cache.js';

export interface CachedServiceAccount {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; resourceVersion?: string };
}

const selector = encodeURIComponent(`${managedByLabel}=${managedByValue}`);

/** Past this many managed ServiceAccounts in one target, its cache stops and syncs read the API. */
export const maxCachedServiceAccounts = 10_000;
/** The longest label value Kubernetes accepts. */
const maxLabelValueLength = 63;
/** A UID is 36 characters; this leaves room for any format without holding megabytes. */
const maxUidLength = 128;

/** The UID and the managed labels, for a managed one with a UID; undefined (not held) otherwise. */
function trim(account: CachedServiceAccount): CachedServiceAccount | undefined {
  const { name, namespace, uid, labels } = account.metadata ?? {};
  if (labels?.[managedByLabel] !== managedByValue) return undefined;
  const keptUid = bounded(uid, maxUidLength);
  if (!keptUid) return undefined;
  const kept: Record<string, string> = {};
  for (const key of [managedByLabel, requestNameLabel, requestNamespaceLabel]) {
    const value = bounded(labels[key], maxLabelValueLength);
    if (value !== undefined) kept[key] = value;
  }
  return { metadata: { name, namespace, uid: keptUid, labels: kept } };
}

export class ServiceAccountCache extends WatchedCache<CachedServiceAccount> {
  constructor(client: KubeRestClient, log?: Logger, maxObjects = maxCachedServiceAccounts) {
    super(client, `/api/v1/serviceaccounts?labelSelector=${selector}`, trim, { maxObjects, ...(log ? { log } : {}) });
  }

  /** Records what this webhook just created, before the watch reports it. */
  remember(account: CachedServiceAccount): void {
    this.store(account);
  }

  /** Forgets what this webhook just deleted. */
  forget(namespace: string, name: string): void {
    this.drop(namespace, name);
  }
}
