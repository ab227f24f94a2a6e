// What a sync leaves behind once a new credential exists: the ServiceAccounts the spec no
// longer names, and the anchors of tokens that a rotation replaced or that have expired.
// Each is deleted in the cluster where it was made, by the UID recorded when it was made
// (credential/removal.ts); what fails stays recorded and is tried again at the next sync.
import type { ServiceAccountEntry } from '../api.js';
import { namespacedName, parseNamespacedName, type NamespacedName } from '../credential/names.js';
import { isGone, type Removal } from '../credential/removal.js';
import { leftoverServiceAccounts, withoutServiceAccount } from '../credential/service-account-ledger.js';
import { trustedServiceAccountUid } from '../credential/tenancy.js';
import type { AnchorAction, AnchorEntry } from '../credential/token-anchors.js';
import type { CallClusters, CallTarget } from './bound-clusters.js';
import { clusterOf } from './context.js';
import { detailOf } from './error-outcomes.js';

/** Who deletes, where, and under which rules: the request, its clusters for this call, the protected namespaces, the time. */
export interface Deleter {
  clusters: CallClusters;
  request: NamespacedName;
  protectedNamespaces: readonly string[];
  now: Date;
}

/** The ServiceAccount the current token belongs to, and its cluster: not a leftover. */
export interface Kept {
  current: ServiceAccountEntry;
  target: CallTarget;
}

export interface Cleanup {
  ledger: ServiceAccountEntry[];
  /** What was deleted now ("namespace/name"). */
  deleted: string[];
  /** Of those, the ones whose labels no longer named the request: deleted by their UID (a Warning). */
  tampered: string[];
  /** What could not be deleted (it stays recorded, and is tried again at the next sync). */
  failed: ServiceAccountEntry[];
  /** The DPUClusters found gone: their cached clients are forgotten. */
  forget: string[];
  detail?: string;
}

/**
 * Deletes a recorded ServiceAccount in `cluster`: by the UID recorded when it was made, except in a
 * protected namespace, where only one still labelled for `request` is (a made-up status cannot
 * name Kubernetes' own ServiceAccounts there by UID).
 */
export function deleteRecordedServiceAccount(cluster: CallTarget, entry: ServiceAccountEntry, deleter: Deleter): Promise<Removal> {
  const ref = parseNamespacedName(entry.serviceAccount);
  const uid = trustedServiceAccountUid(ref.namespace, entry.serviceAccountUID, deleter.protectedNamespaces);
  return cluster.deleteServiceAccount({ ...ref, ...(uid ? { uid } : {}) }, deleter.request);
}

/** A cleanup that deleted nothing: the ledger as it was. */
export const noCleanup = (ledger: ServiceAccountEntry[]): Cleanup => ({ ledger, deleted: [], tampered: [], failed: [], forget: [] });

/**
 * Deletes every recorded ServiceAccount but the one the current token belongs to (`keep`,
 * in `target`; none when a refusal takes everything back), each in the cluster where it
 * was made (deleteRecordedServiceAccount). Done after the new credential exists, so a failure
 * never leaves the request without one. One labelled for someone else and of no recorded UID is
 * not ours: forgotten, not counted.
 */
export async function deleteLeftovers(ledger: ServiceAccountEntry[], keep: Kept | undefined, deleter: Deleter): Promise<Cleanup> {
  const cleanup = noCleanup(ledger);
  const toDelete = keep ? leftoverServiceAccounts(ledger, keep.current) : ledger;
  for (const entry of toDelete) {
    try {
      const { cluster, forget } = keep && entry.clusterID === keep.target.id ? { cluster: keep.target } : await clusterOf(deleter.clusters, entry);
      if (forget) cleanup.forget.push(forget);
      // Another reference to the API server the current token lives on: the same ServiceAccount, kept.
      const isCurrent = keep !== undefined && cluster?.id === keep.current.clusterID && entry.serviceAccount === keep.current.serviceAccount;
      // No cluster: it is gone, and the ServiceAccount with it.
      if (cluster && !isCurrent) {
        const removal = await deleteRecordedServiceAccount(cluster, entry, deleter);
        if (removal === 'deleted' || removal === 'tampered') cleanup.deleted.push(entry.serviceAccount);
        if (removal === 'tampered') cleanup.tampered.push(entry.serviceAccount);
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
  /** Whether tokens issued before a rotation were revoked now: their anchors deleted, or found gone. */
  revoked: boolean;
  /** "namespace/name" of the anchors of rotated-away tokens that could not be deleted. */
  failedToRevoke: string[];
  /** "namespace/name" of anchors deleted by their UID though their labels or owner had been changed (a Warning). */
  tampered: string[];
  /**
   * "namespace/name" of anchors of no recorded UID under whose name a Secret not labelled as this
   * request's anchor stands: left alone, and kept on record, since their tokens may still work.
   */
  unproven: string[];
  /** The DPUClusters found gone: their cached clients are forgotten. */
  forget: string[];
  detail?: string;
}

/** A revocation that deleted nothing: the anchors on record as they were. */
export const noRevocation = (anchors: AnchorEntry[]): Revocation => ({ anchors, revoked: false, failedToRevoke: [], tampered: [], unproven: [], forget: [] });

/**
 * Deletes the anchors `anchorsToDelete` chose, each in its cluster; what fails stays recorded for
 * the next sync. Only what is gone counts as revoked: an unproven anchor stays recorded (until its
 * token has expired) and revokes nothing.
 */
export async function deleteAnchors(toDelete: { entry: AnchorEntry; action: AnchorAction }[], anchors: AnchorEntry[], target: CallTarget | undefined,
  deleter: Deleter): Promise<Revocation> {
  const revocation = noRevocation(anchors);
  for (const { entry, action } of toDelete) {
    const { namespace, name } = parseNamespacedName(entry.serviceAccount);
    const anchorRef = namespacedName(namespace, entry.anchor);
    try {
      const { cluster, forget } = target && entry.clusterID === target.id ? { cluster: target } : await clusterOf(deleter.clusters, entry);
      if (forget) revocation.forget.push(forget);
      // No cluster: it is gone, and the token with it.
      const removal = cluster ? await cluster.deleteAnchor(namespace, entry.anchor, deleter.request, name, entry.anchorUID) : 'absent';
      if (removal === 'tampered') revocation.tampered.push(anchorRef);
      // An expired token needs no revoking: its entry goes whatever stands under its name.
      if (removal === 'unproven' && action !== 'expired' && Date.parse(entry.expiresAt) > deleter.now.getTime()) {
        revocation.unproven.push(anchorRef);
        continue;
      }
      revocation.anchors = revocation.anchors.filter((known) => known !== entry);
      if (action === 'revoke' && isGone(removal)) revocation.revoked = true;
    } catch (error) {
      // An expired token needs no revoking: only a failure to end one that still works is reported.
      if (action !== 'expired') revocation.failedToRevoke.push(anchorRef);
      revocation.detail ??= detailOf(error);
    }
  }
  return revocation;
}
