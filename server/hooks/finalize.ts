// The finalize hook: the request is being deleted; delete the ServiceAccount made
// for it (by the UID recorded when it was made, whatever its labels say by then). A
// cluster that is gone took the ServiceAccount with it and blocks nothing.
import type { ServiceAccountEntry } from '../api.js';
import { eventReasons, normal } from '../credential/events.js';
import { recordedServiceAccounts, sameServiceAccount } from '../credential/service-account-ledger.js';
import { retryAfterSeconds } from '../credential/status.js';
import { validateRequest } from '../credential/validate.js';
import { namespacedName, requestRefOf } from '../credential/names.js';
import type { Deadline } from '../kube/rest.js';
import { secretChildKey, type SyncRequest } from '../metacontroller.js';
import type { HostAccess } from './cluster-access.js';
import { clusterOf, knownDpuCluster, type HookContext } from './context.js';
import { deleteRecordedServiceAccount, tamperingEvents } from './leftovers.js';
import { unchanged, writtenByWebhook } from './children.js';
import { finalizeFailure } from './error-outcomes.js';
import { outcomeReasons, type OutcomeReason, type SyncOutcome } from './outcome.js';

/**
 * What to delete: every ServiceAccount the status recorded, and the one the spec names
 * (made by a sync whose answer Metacontroller never wrote). Each is deleted by its recorded
 * UID, or, without one (the spec's, or an older status's), only if its labels say it was made for this request.
 */
function serviceAccountsToDelete(request: SyncRequest, host: HostAccess): ServiceAccountEntry[] {
  const accounts = recordedServiceAccounts(request.parent.status);
  const validation = validateRequest(request.parent);
  if (validation.valid) {
    const { serviceAccount, targetCluster } = validation.spec;
    // The UID of the cluster it was made in, when known without a call (related, or the watch);
    // without it, clusterOf takes the DPUCluster of that name at its word.
    const known = targetCluster ? knownDpuCluster(host, targetCluster, request.related) : undefined;
    const fromSpec: ServiceAccountEntry = {
      serviceAccount: namespacedName(serviceAccount.namespace, serviceAccount.name),
      ...(targetCluster ? { targetCluster: namespacedName(targetCluster.namespace, targetCluster.name) } : {}),
      ...(known?.metadata?.uid ? { targetClusterUID: known.metadata.uid } : {}),
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
  const status = parent.status ?? {};
  const deleted: string[] = [];
  const tampered: string[] = [];
  const done = (reason: OutcomeReason, detail?: string): SyncOutcome => ({
    response: { status, children: [], resyncAfterSeconds: 0, finalized: true },
    decision: 'finalized',
    reason,
    ...(detail ? { detail } : {}),
    events: [
      ...deleted.map((name) => normal(eventReasons.serviceAccountDeleted, `deleted service account ${name}: the request is being deleted`)),
      ...tamperingEvents({ tampered }, { tampered: [] }),
    ],
  });

  const accounts = serviceAccountsToDelete(request, context.clusters.host);
  if (accounts.length === 0) return done(outcomeReasons.noServiceAccount);
  try {
    await deleteServiceAccounts(accounts, deleted, tampered, request, context, deadline);
    // Called again after finalized: true (another finalizer keeps the request, or a resync): nothing left, nothing written.
    return done(deleted.length > 0 ? outcomeReasons.serviceAccountDeleted : outcomeReasons.nothingLeftToDelete);
  } catch (error) {
    const { detail, clusterUnusable } = finalizeFailure(error);
    const deletingSince = parent.metadata?.deletionTimestamp ? new Date(parent.metadata.deletionTimestamp) : now;
    if (clusterUnusable && now.getTime() - deletingSince.getTime() > finalizeGiveUpAfterMs) return done(outcomeReasons.gaveUpOnServiceAccount, detail);
    const observed = writtenByWebhook(Object.values(request.children?.[secretChildKey] ?? {}), parent);
    return {
      response: { status, children: unchanged(observed), resyncAfterSeconds: retryAfterSeconds(deletingSince, now), finalized: false },
      decision: 'error',
      reason: outcomeReasons.serviceAccountDeleteFailed,
      detail,
    };
  }
}

/**
 * Deletes each ServiceAccount in its cluster, adding to `deleted` ("namespace/name") as it goes, and
 * to `tampered` those deleted by UID though relabelled: a failure keeps what was done.
 */
async function deleteServiceAccounts(accounts: ServiceAccountEntry[], deleted: string[], tampered: string[], request: SyncRequest,
  context: HookContext, deadline: Deadline): Promise<void> {
  const requestRef = requestRefOf(request.parent);
  for (const account of accounts) {
    const target = await clusterOf(context.clusters, account, deadline, request.related);
    // undefined: the cluster is gone, and the ServiceAccount with it.
    const removal = target ? await deleteRecordedServiceAccount(target, account, requestRef, context, deadline) : 'absent';
    if (removal === 'deleted' || removal === 'tampered') deleted.push(account.serviceAccount);
    if (removal === 'tampered') tampered.push(account.serviceAccount);
  }
}
