// The finalize hook: the request is being deleted; delete the ServiceAccount made
// for it. A cluster that is gone took the ServiceAccount with it and blocks nothing.
import { retryAfterSeconds } from '../credential/schedule.js';
import { validateRequest } from '../credential/validate.js';
import { namespacedName } from '../credential/names.js';
import { isNotFound, KubeApiError, KubeUnreachableError } from '../kube/rest.js';
import { deleteManagedServiceAccount } from '../kube/service-accounts.js';
import { TargetClusterNotReadyError } from '../kube/clusters.js';
import { InvalidKubeconfigError } from '../kube/kubeconfig.js';
import { dpuClusterRelatedKey, objectKey, secretChildKey, type SyncRequest } from '../metacontroller.js';
import { previousServiceAccount, previousTargetCluster, type HookContext, type PreviousServiceAccount } from './context.js';
import { unchanged } from './children.js';
import type { SyncOutcome } from './sync.js';

/** What to delete: the ServiceAccount the status recorded, else the one the spec names. */
function serviceAccountToDelete(request: SyncRequest): PreviousServiceAccount | undefined {
  const recorded = previousServiceAccount(request.parent.status);
  if (recorded) return recorded;
  const validation = validateRequest(request.parent);
  if (!validation.valid) return undefined;
  const { serviceAccount, targetCluster } = validation.spec;
  if (!targetCluster) return { serviceAccount, targetCluster: '', targetClusterUid: '' };
  const key = objectKey(targetCluster.namespace, targetCluster.name);
  const related = request.related?.[dpuClusterRelatedKey]?.[key];
  return { serviceAccount, targetCluster: namespacedName(targetCluster.namespace, targetCluster.name), targetClusterUid: related?.metadata?.uid ?? '' };
}

export async function finalize(request: SyncRequest, context: HookContext): Promise<SyncOutcome> {
  const now = context.now();
  const parent = request.parent;
  const requestRef = { namespace: parent.metadata?.namespace ?? '', name: parent.metadata?.name ?? '' };
  const status = parent.status ?? {};
  const done = (reason: string): SyncOutcome => ({
    response: { status, children: [], resyncAfterSeconds: 0, finalized: true },
    decision: 'finalized',
    reason,
  });

  const account = serviceAccountToDelete(request);
  if (!account) return done('no service account was made');
  try {
    const target = await previousTargetCluster(context.clusters, account);
    if (!target) return done('the target cluster no longer exists');
    await deleteManagedServiceAccount(target.client, account.serviceAccount, requestRef);
    return done('service account deleted');
  } catch (error) {
    const expected = error instanceof KubeUnreachableError || error instanceof KubeApiError
      || error instanceof TargetClusterNotReadyError || error instanceof InvalidKubeconfigError;
    if (!expected) throw error;
    if (error instanceof TargetClusterNotReadyError || (error instanceof KubeApiError && isNotFound(error))) {
      return done('the target cluster no longer exists');
    }
    const observed = Object.values(request.children?.[secretChildKey] ?? {});
    const deletingSince = parent.metadata?.deletionTimestamp ? new Date(parent.metadata.deletionTimestamp) : undefined;
    return {
      response: { status, children: unchanged(observed), resyncAfterSeconds: retryAfterSeconds(deletingSince, now), finalized: false },
      decision: 'error',
      reason: `deleting the service account failed: ${(error as Error).message}`,
    };
  }
}
