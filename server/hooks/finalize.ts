// The finalize hook: the request is being deleted; delete the ServiceAccount made
// for it. A cluster that is gone took the ServiceAccount with it and blocks nothing.
import type { ServiceAccountEntry } from '../api.js';
import { eventReasons, normal } from '../credential/events.js';
import { retryAfterSeconds } from '../credential/schedule.js';
import { recordedServiceAccounts, sameServiceAccount } from '../credential/service-account-ledger.js';
import { validateRequest } from '../credential/validate.js';
import { namespacedName } from '../credential/names.js';
import { KubeApiError, KubeUnreachableError, type Deadline } from '../kube/rest.js';
import { deleteManagedServiceAccount } from '../kube/service-accounts.js';
import { TargetClusterNotReadyError } from '../kube/clusters.js';
import { InvalidKubeconfigError } from '../kube/kubeconfig.js';
import { dpuClusterRelatedKey, objectKey, secretChildKey, type SyncRequest } from '../metacontroller.js';
import { clusterOf, serviceAccountRefOf, type HookContext } from './context.js';
import { unchanged } from './children.js';
import type { SyncOutcome } from './sync.js';

/**
 * What to delete: every ServiceAccount the status recorded, and the one the spec names
 * (made by a sync whose answer Metacontroller never wrote). Each is deleted only if its
 * labels say it was made for this request.
 */
function serviceAccountsToDelete(request: SyncRequest): ServiceAccountEntry[] {
  const accounts = recordedServiceAccounts(request.parent.status);
  const validation = validateRequest(request.parent);
  if (validation.valid) {
    const { serviceAccount, targetCluster } = validation.spec;
    const related = targetCluster ? request.related?.[dpuClusterRelatedKey]?.[objectKey(targetCluster.namespace, targetCluster.name)] : undefined;
    const fromSpec: ServiceAccountEntry = {
      serviceAccount: namespacedName(serviceAccount.namespace, serviceAccount.name),
      ...(targetCluster ? { targetCluster: namespacedName(targetCluster.namespace, targetCluster.name) } : {}),
      ...(related?.metadata?.uid ? { targetClusterUID: related.metadata.uid } : {}),
    };
    if (!accounts.some((known) => sameServiceAccount(known, fromSpec))) accounts.push(fromSpec);
  }
  return accounts;
}

/**
 * A DPUCluster that exists but cannot be used (its kubeconfig missing or broken) is
 * retried this long after the deletion began, then given up on so deletion is not blocked
 * forever; the ServiceAccount may then be left in that cluster (logged).
 */
export const finalizeGiveUpAfterMs = 10 * 60_000;

export async function finalize(request: SyncRequest, context: HookContext, deadline: Deadline): Promise<SyncOutcome> {
  const now = context.now();
  const parent = request.parent;
  const requestRef = { namespace: parent.metadata?.namespace ?? '', name: parent.metadata?.name ?? '' };
  const status = parent.status ?? {};
  const deletingSince = parent.metadata?.deletionTimestamp ? new Date(parent.metadata.deletionTimestamp) : now;
  const deleted: string[] = [];
  const done = (reason: string, detail?: string): SyncOutcome => ({
    response: { status, children: [], resyncAfterSeconds: 0, finalized: true },
    decision: 'finalized',
    reason,
    ...(detail ? { detail } : {}),
    events: deleted.map((name) => normal(eventReasons.serviceAccountDeleted, `deleted service account ${name}: the request is being deleted`)),
  });

  const accounts = serviceAccountsToDelete(request);
  if (accounts.length === 0) return done('NoServiceAccount');
  try {
    for (const account of accounts) {
      const target = await clusterOf(context.clusters, account, deadline);
      // undefined: the cluster is gone, and the ServiceAccount with it.
      if (target && await deleteManagedServiceAccount(target.client.within(deadline), serviceAccountRefOf(account), requestRef, target.serviceAccounts)) {
        deleted.push(account.serviceAccount);
      }
    }
    // Called again after finalized: true (another finalizer keeps the request, or a resync): nothing left, nothing written.
    return done(deleted.length > 0 ? 'ServiceAccountDeleted' : 'NothingLeftToDelete');
  } catch (error) {
    const expected = error instanceof KubeUnreachableError || error instanceof KubeApiError
      || error instanceof TargetClusterNotReadyError || error instanceof InvalidKubeconfigError;
    if (!expected) throw error;
    const detail = error instanceof KubeUnreachableError ? `${error.message}: ${error.detail}` : (error as Error).message;
    // Only a cluster that cannot be used at all is given up on; one that is down is waited for.
    const unusable = error instanceof TargetClusterNotReadyError || error instanceof InvalidKubeconfigError;
    if (unusable && now.getTime() - deletingSince.getTime() > finalizeGiveUpAfterMs) return done('GaveUpOnServiceAccount', detail);
    const observed = Object.values(request.children?.[secretChildKey] ?? {});
    return {
      response: { status, children: unchanged(observed), resyncAfterSeconds: retryAfterSeconds(deletingSince, now), finalized: false },
      decision: 'error',
      reason: 'ServiceAccountDeleteFailed',
      detail,
    };
  }
}
