// The finalize hook: the request is being deleted; delete the ServiceAccount made
// for it (by the UID recorded when it was made, whatever its labels say by then). A
// cluster that is gone took the ServiceAccount with it and blocks nothing.
import type { ServiceAccountEntry } from '../api.js';
import { recordedServiceAccounts, sameServiceAccount } from '../credential/service-account-ledger.js';
import { retryAfterSeconds } from '../credential/status.js';
import { validateRequest } from '../credential/validate.js';
import { namespacedName, requestRefOf } from '../credential/names.js';
import type { Deadline } from '../kube/rest.js';
import { secretChildKey, type SyncRequest } from '../metacontroller.js';
import { finalizeAnswer } from './answer.js';
import { bindDeadline } from './bound-clusters.js';
import type { HostAccess } from './cluster-access.js';
import { clusterOf, knownDpuCluster, policyOf, type HookContext } from './context.js';
import { deleteRecordedServiceAccount, type Deleter } from './leftovers.js';
import { writtenByWebhook } from './children.js';
import { forgetGone } from './effects.js';
import { finalizeFailure } from './error-outcomes.js';
import { outcomeReasons, type SyncOutcome } from './outcome.js';

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
  const deletion: Deletion = { deleted: [], tampered: [], forget: [] };
  const accounts = serviceAccountsToDelete(request, context.clusters.host);
  if (accounts.length === 0) return finalizeAnswer(status, { reason: outcomeReasons.noServiceAccount, ...deletion });
  const deleter = { clusters: bindDeadline(context.clusters, deadline), request: requestRefOf(parent),
    protectedNamespaces: policyOf(context).protectedNamespaces, now };
  try {
    await deleteServiceAccounts(accounts, deletion, request, deleter);
    // Called again after finalized: true (another finalizer keeps the request, or a resync): nothing left, nothing written.
    return finalizeAnswer(status, { reason: deletion.deleted.length > 0 ? outcomeReasons.serviceAccountDeleted : outcomeReasons.nothingLeftToDelete,
      ...deletion });
  } catch (error) {
    const { detail, clusterUnusable } = finalizeFailure(error);
    const deletingSince = parent.metadata?.deletionTimestamp ? new Date(parent.metadata.deletionTimestamp) : now;
    if (clusterUnusable && now.getTime() - deletingSince.getTime() > finalizeGiveUpAfterMs) {
      return finalizeAnswer(status, { reason: outcomeReasons.gaveUpOnServiceAccount, detail, ...deletion });
    }
    const observed = writtenByWebhook(Object.values(request.children?.[secretChildKey] ?? {}), parent);
    return finalizeAnswer(status, { reason: outcomeReasons.serviceAccountDeleteFailed, detail, ...deletion,
      retry: { observed, afterSeconds: retryAfterSeconds(deletingSince, now) } });
  } finally {
    forgetGone(context.clusters, deletion.forget);
  }
}

/** What finalize deleted so far ("namespace/name"), of that what had been relabelled, and the DPUClusters found gone. */
interface Deletion {
  deleted: string[];
  tampered: string[];
  forget: string[];
}

/** Deletes each ServiceAccount in its cluster, recording as it goes: a failure keeps what was done. */
async function deleteServiceAccounts(accounts: ServiceAccountEntry[], deletion: Deletion, request: SyncRequest, deleter: Deleter): Promise<void> {
  for (const account of accounts) {
    const { cluster, forget } = await clusterOf(deleter.clusters, account, request.related);
    if (forget) deletion.forget.push(forget);
    // No cluster: it is gone, and the ServiceAccount with it.
    const removal = cluster ? await deleteRecordedServiceAccount(cluster, account, deleter) : 'absent';
    if (removal === 'deleted' || removal === 'tampered') deletion.deleted.push(account.serviceAccount);
    if (removal === 'tampered') deletion.tampered.push(account.serviceAccount);
  }
}
