// The ServiceAccounts a request has made, across spec changes and clusters, recorded in its
// status from the moment one exists (before any token is minted for it) until it is
// deleted. A spec that changes twice before a mint would otherwise leave the first
// ServiceAccount behind, unrecorded, for ever.
import { createHash } from 'node:crypto';
import { isRecord, type DpuServiceCredentialRequestStatus, type ServiceAccountEntry } from '../api.js';

export type { ServiceAccountEntry } from '../api.js';

/**
 * Which API server a cluster is: its URL and CA. Two DPUClusters (or a DPUCluster and
 * the host) may reach the same one; a ServiceAccount there is then one ServiceAccount.
 */
export function clusterIdOf(endpoint: { server: string; caPem: string }): string {
  return createHash('sha256').update(endpoint.server).update('\n').update(endpoint.caPem.trim()).digest('hex').slice(0, 16);
}

const isEntry = (value: unknown): value is ServiceAccountEntry => isRecord(value) && typeof value.serviceAccount === 'string'
  && /^[^/]+\/[^/]+$/.test(value.serviceAccount)
  && ['targetCluster', 'targetClusterUID', 'clusterID', 'serviceAccountUID'].every((field) => value[field] === undefined || typeof value[field] === 'string');

/** status.serviceAccounts as written (the well-formed entries of it). */
export function ledgerOf(status: DpuServiceCredentialRequestStatus | undefined): ServiceAccountEntry[] {
  return Array.isArray(status?.serviceAccounts) ? status.serviceAccounts.filter(isEntry) : [];
}

/** Every ServiceAccount the status records: the ledger, and the single identity of older statuses (and DPF's). */
export function recordedServiceAccounts(status: DpuServiceCredentialRequestStatus | undefined): ServiceAccountEntry[] {
  const entries = ledgerOf(status);
  const legacy = status?.serviceAccount;
  if (legacy && /^[^/]+\/[^/]+$/.test(legacy)) {
    const entry: ServiceAccountEntry = {
      serviceAccount: legacy,
      ...(status.targetCluster ? { targetCluster: status.targetCluster } : {}),
      ...(status.targetClusterUID ? { targetClusterUID: status.targetClusterUID } : {}),
    };
    if (!entries.some((known) => sameServiceAccount(known, entry))) entries.push(entry);
  }
  return entries;
}

/** The same ServiceAccount: same namespace and name on the same API server (by ID when both know it, else by reference). */
export function sameServiceAccount(a: ServiceAccountEntry, b: ServiceAccountEntry): boolean {
  if (a.serviceAccount !== b.serviceAccount) return false;
  if (a.clusterID && b.clusterID) return a.clusterID === b.clusterID;
  return (a.targetCluster ?? '') === (b.targetCluster ?? '') && (!a.targetClusterUID || !b.targetClusterUID || a.targetClusterUID === b.targetClusterUID);
}

/** The ledger with `entry` in it (replacing what it knew of that ServiceAccount). */
export function withServiceAccount(ledger: ServiceAccountEntry[], entry: ServiceAccountEntry): ServiceAccountEntry[] {
  return [...ledger.filter((known) => !sameServiceAccount(known, entry)), entry];
}

export function withoutServiceAccount(ledger: ServiceAccountEntry[], entry: ServiceAccountEntry): ServiceAccountEntry[] {
  return ledger.filter((known) => known !== entry);
}

/** Everything recorded except the ServiceAccount the current token belongs to: to be deleted. */
export function leftoverServiceAccounts(ledger: ServiceAccountEntry[], current: ServiceAccountEntry): ServiceAccountEntry[] {
  return ledger.filter((known) => !sameServiceAccount(known, current));
}
