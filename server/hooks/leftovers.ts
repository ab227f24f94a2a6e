// What a sync leaves behind once a new credential exists: the ServiceAccounts the spec no
// longer names, and the anchors of tokens that a rotation replaced or that have expired.
// Each is deleted in the cluster where it was made; what fails stays recorded and is tried
// again at the next sync.
import type { ServiceAccountEntry } from '../api.js';
import { namespacedName } from '../credential/names.js';
import { leftoverServiceAccounts, withoutServiceAccount } from '../credential/service-account-ledger.js';
import type { AnchorAction, AnchorEntry } from '../credential/token-anchors.js';
import type { NamespacedName } from '../credential/validate.js';
import type { Deadline } from '../kube/rest.js';
import type { TargetAccess } from './cluster-access.js';
import { clusterOf, serviceAccountRefOf, type HookContext } from './context.js';
import { detailOf } from './error-outcomes.js';

export interface Cleanup {
  ledger: ServiceAccountEntry[];
  /** What was deleted now ("namespace/name"). */
  deleted: string[];
  /** What could not be deleted (it stays recorded, and is tried again at the next sync). */
  failed: ServiceAccountEntry[];
  detail?: string;
}

/**
 * Deletes every recorded ServiceAccount but the one the current token belongs to (`keep`,
 * in `target`; none when a refusal takes everything back), each in the cluster where it
 * was made, and only if its labels name `request`. Done after the new credential exists,
 * so a failure never leaves the request without one.
 */
export async function deleteLeftovers(ledger: ServiceAccountEntry[], keep: { current: ServiceAccountEntry; target: TargetAccess } | undefined,
  request: NamespacedName, context: HookContext, deadline: Deadline): Promise<Cleanup> {
  const cleanup: Cleanup = { ledger, deleted: [], failed: [] };
  const toDelete = keep ? leftoverServiceAccounts(ledger, keep.current) : ledger;
  for (const entry of toDelete) {
    try {
      const cluster = keep && entry.clusterID === keep.target.id ? keep.target : await clusterOf(context.clusters, entry, deadline);
      // Another reference to the API server the current token lives on: the same ServiceAccount, kept.
      const isCurrent = keep !== undefined && cluster?.id === keep.current.clusterID && entry.serviceAccount === keep.current.serviceAccount;
      // No cluster: it is gone, and the ServiceAccount with it.
      if (cluster && !isCurrent) {
        if (await cluster.deleteServiceAccount(serviceAccountRefOf(entry), request, deadline)) {
          cleanup.deleted.push(entry.serviceAccount);
        }
      }
      cleanup.ledger = withoutServiceAccount(cleanup.ledger, entry);
    } catch (error) {
      cleanup.failed.push(entry);
      cleanup.detail ??= detailOf(error);
    }
  }
  return cleanup;
}

export interface Revocation {
  anchors: AnchorEntry[];
  /** Whether tokens issued before a rotation were revoked now. */
  revoked: boolean;
  /** "namespace/name" of the anchors of rotated-away tokens that could not be deleted. */
  failedToRevoke: string[];
  detail?: string;
}

/** Deletes the anchors `anchorsToDelete` chose, each in its cluster; what fails stays recorded for the next sync. */
export async function deleteAnchors(toDelete: { entry: AnchorEntry; action: AnchorAction }[], anchors: AnchorEntry[], target: TargetAccess | undefined,
  request: NamespacedName, context: HookContext, deadline: Deadline): Promise<Revocation> {
  const revocation: Revocation = { anchors, revoked: false, failedToRevoke: [] };
  for (const { entry, action } of toDelete) {
    const { namespace, name } = serviceAccountRefOf(entry);
    try {
      const cluster = target && entry.clusterID === target.id ? target : await clusterOf(context.clusters, entry, deadline);
      // No cluster: it is gone, and the token with it.
      if (cluster) await cluster.deleteAnchor(namespace, entry.anchor, request, name, deadline);
      revocation.anchors = revocation.anchors.filter((known) => known !== entry);
      if (action === 'revoke') revocation.revoked = true;
    } catch (error) {
      // An expired token needs no revoking: only a failure to end one that still works is reported.
      if (action !== 'expired') revocation.failedToRevoke.push(namespacedName(namespace, entry.anchor));
      revocation.detail ??= detailOf(error);
    }
  }
  return revocation;
}
